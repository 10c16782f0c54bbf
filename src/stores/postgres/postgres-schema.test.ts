import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import { dropSchema, newClient, newPool } from '../../../test/support/stores/postgres/postgres.test-helper.js'
import { postgresNames } from './postgres-names.js'
import { postgresSchema } from './postgres-schema.js'
import { postgresStatements } from './postgres-sql.js'
import { PostgresStore } from './postgres-store.js'

describe('postgresSchema', () => {
  it('validates the schema and table names and quotes them', () => {
    expect(postgresNames({ schema: 'Billing', table: 'Keys' }).qualifiedTable).toBe('"Billing"."Keys"')
    expect(postgresNames().qualifiedTable).toBe('"public"."idem_records"')
    for (const bad of ['', 'a-b', 'a"b', 'x; DROP TABLE y', '1abc', 'a'.repeat(50)]) {
      expect(() => postgresSchema({ table: bad }), bad).toThrow(TypeError)
    }
    expect(() => postgresSchema({ schema: 'a b' })).toThrow(TypeError)
    expect(() => postgresSchema({ schema: 'a'.repeat(64) })).toThrow(TypeError)
    expect(
      () => new PostgresStore({ client: { query: async () => ({ rows: [], rowCount: 0 }) }, table: 'bad-name' }),
    ).toThrow(TypeError)
  })

  it('is a logged table with an expiry index and the six functions', () => {
    const ddl = postgresSchema({ schema: 'idem', table: 'records' })
    expect(ddl).not.toMatch(/\b(UNLOGGED|TEMP|TEMPORARY)\b/i)
    expect(ddl).toContain('CREATE SCHEMA IF NOT EXISTS "idem"')
    expect(ddl).toContain('CREATE TABLE IF NOT EXISTS "idem"."records"')
    expect(ddl).toContain('CREATE INDEX IF NOT EXISTS "records_expires_at" ON "idem"."records" (expires_at)')
    for (const fn of [
      'records_begin',
      'records_begin_many',
      'records_complete_many',
      'records_settle',
      'records_resettle',
    ]) {
      expect(ddl).toContain(`CREATE OR REPLACE FUNCTION "idem"."${fn}"(`)
    }
    expect(postgresSchema()).not.toContain('CREATE SCHEMA')
  })
})

if (await requireService('PostgreSQL', 5432)) {
  describe('PostgresStore schema on the server', () => {
    const pool = newPool()
    const schemas: string[] = []
    const fresh = () => {
      const schema = isolatedName('idem_pg_ddl')
      schemas.push(schema)
      return schema
    }
    afterAll(async () => {
      for (const schema of schemas) await dropSchema(pool, schema)
      await pool.end()
    })

    it('the exported DDL, run as a migration would, creates a working store', async () => {
      const schema = fresh()
      await pool.query(postgresSchema({ schema, table: 'from_migration' }))
      const store = new PostgresStore({ client: pool, schema, table: 'from_migration' })
      const begun = await store.begin('k', 'fp', 30_000, 60_000)
      if (begun.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun.outcome}`)
      await store.complete('k', begun.token, '"done"', 60_000)
      expect(await store.begin('k', 'fp', 30_000, 60_000)).toMatchObject({ outcome: 'completed', result: '"done"' })
      const { rows } = await pool.query(
        `SELECT c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = 'from_migration'`,
        [schema],
      )
      expect(rows).toEqual([{ relpersistence: 'p' }]) // permanent: WAL-logged, survives a crash
    })

    it('ensureSchema is idempotent and keeps existing records', async () => {
      const schema = fresh()
      const store = new PostgresStore({ client: pool, schema, table: 'Mixed_Case' })
      await store.ensureSchema()
      const begun = await store.begin('kept', 'fp', 30_000, 60_000)
      await store.ensureSchema()
      await store.ensureSchema()
      expect((await store.get('kept'))?.token).toBe(begun.outcome === 'acquired' ? begun.token : 'none')
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1`,
        [schema],
      )
      expect(rows[0].n).toBe(6)
    })

    it('completes through the complete function, and through the statement on a schema created before it', async () => {
      for (const older of [false, true]) {
        const schema = fresh()
        const sent: string[] = []
        const recording = {
          query: (text: string, values?: unknown[]) => {
            sent.push(text)
            return pool.query(text, values)
          },
        }
        // An older schema: created, then without the function, used by a store that never ran
        // ensureSchema() itself (which would have created it).
        await new PostgresStore({ client: pool, schema }).ensureSchema()
        if (older) await pool.query(`DROP FUNCTION "${schema}"."idem_records_complete"`)
        const store = new PostgresStore({ client: recording, schema })
        for (const key of ['a', 'b']) {
          const begun = await store.begin(key, 'fp', 30_000, 60_000)
          if (begun.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun.outcome}`)
          await store.complete(key, begun.token, `"${key}"`, 60_000)
          expect(await store.get(key)).toMatchObject({ state: 'completed', result: `"${key}"`, token: null })
          await expect(store.complete(key, begun.token, '"again"', 60_000)).rejects.toMatchObject({
            code: 'LEASE_LOST',
          })
        }
        const calls = sent.filter((text) => text.startsWith('SELECT') && text.includes('_complete"($1'))
        const checks = sent.filter((text) => text.startsWith('SELECT to_regprocedure'))
        expect(checks).toHaveLength(1)
        expect(calls).toHaveLength(older ? 0 : 4)
        if (older) {
          // ensureSchema() adds the function back: the same store uses it from then on, without asking again.
          await store.ensureSchema()
          sent.length = 0
          const begun = await store.begin('c', 'fp', 30_000, 60_000)
          if (begun.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun.outcome}`)
          await store.complete('c', begun.token, '"c"', 60_000)
          expect(sent.filter((text) => text.startsWith('SELECT') && text.includes('_complete"($1'))).toHaveLength(1)
          expect(sent.filter((text) => text.startsWith('SELECT to_regprocedure'))).toHaveLength(0)
        }
      }
    })

    it('ensureSchema is safe when several processes run it at once', async () => {
      const schema = fresh()
      const clients = await Promise.all(Array.from({ length: 6 }, () => newClient()))
      try {
        await Promise.all(clients.map((client) => new PostgresStore({ client: client, schema }).ensureSchema()))
        const store = new PostgresStore({ client: pool, schema })
        expect((await store.begin('after', 'fp', 30_000, 60_000)).outcome).toBe('acquired')
      } finally {
        await Promise.all(clients.map((client) => client.end()))
      }
    })

    it('keeps tables in one schema apart', async () => {
      const schema = fresh()
      const a = new PostgresStore({ client: pool, schema, table: 'a' })
      const b = new PostgresStore({ client: pool, schema, table: 'b' })
      await Promise.all([a.ensureSchema(), b.ensureSchema()])
      expect((await a.begin('same', 'fp', 30_000, 60_000)).outcome).toBe('acquired')
      expect((await b.begin('same', 'fp', 30_000, 60_000)).outcome).toBe('acquired')
    })

    it('sweeps through the expires_at index, without scanning the table', async () => {
      const schema = fresh()
      const store = new PostgresStore({ client: pool, schema })
      await store.ensureSchema()
      const t = `"${schema}".idem_records`
      await pool.query(
        `INSERT INTO ${t} SELECT 'k' || g, 'completed', 'fp', NULL, NULL, 1, NULL, 0, 0, 4102444800000 + g
         FROM generate_series(1, 20000) g`,
      )
      await pool.query(
        `INSERT INTO ${t} SELECT 'old' || g, 'completed', 'fp', NULL, NULL, 1, NULL, 0, 0, g FROM generate_series(1, 50) g`,
      )
      await pool.query(`ANALYZE ${t}`)
      const plan = await pool.query(`EXPLAIN ${postgresStatements(postgresNames({ schema })).sweep}`, [10])
      const text = plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n')
      expect(text).toContain('idem_records_expires_at')
      expect(text).not.toMatch(/Seq Scan/)
      expect(await store.sweep(30)).toBe(30)
      expect(await store.sweep(30)).toBe(20)
      expect(await store.sweep(30)).toBe(0)
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n).toBe(20000)
    })
  })
}
