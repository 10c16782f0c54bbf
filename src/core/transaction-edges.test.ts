// Transaction mode over a pool on PostgreSQL and MariaDB: BEGIN travels with the claim and COMMIT
// with the completion (one round trip each), and every path around that stays whole: a claim that
// outlived its record commits nothing, a value that cannot be inlined takes the parameter path,
// and a MariaDB schema without the transaction-mode procedures falls back to plain statements.

import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { createTestPool, dropSchema as dropMysqlSchema } from '../../test/support/stores/mysql/mysql.test-helper.js'
import { dropSchema as dropPgSchema, newPool } from '../../test/support/stores/postgres/postgres.test-helper.js'
import type { PgPoolLike } from '../drivers/pg.js'
import type { SqlDatabase, SqlExecutor } from '../sql/core/executor.js'
import { fromMysql2 } from '../sql/mysql2/mysql2-database.js'
import { fromPg } from '../sql/pg/pg-database.js'
import { MAX_INLINED_BYTES } from '../sql/pg/pg-literal.js'
import { procedureNames } from '../stores/mysql/mysql-procedures.js'
import { MysqlStore } from '../stores/mysql/mysql-store.js'
import { PostgresStore } from '../stores/postgres/postgres-store.js'
import { encodeValue } from './codec.js'
import { Idempotency } from './idempotency.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/**
 * A function that returns nothing and outlives its record's ttl (30 ms) commits nothing either,
 * whether its claim was settled (PostgreSQL) or left in progress (MariaDB).
 */
async function expectVoidOutlivingTtlCommitsNothing<Tx>(
  idem: Idempotency,
  db: SqlDatabase<Tx>,
  write: (key: string) => (tx: unknown, ctx: { sql: SqlExecutor }) => Promise<unknown>,
  effect: (id: string) => Promise<number | null>,
  store: { get(id: string): Promise<unknown> },
): Promise<void> {
  await expect(
    idem.transaction(db, { key: 'expired-void' }, async (tx, ctx) => {
      await write('expired-void')(tx, ctx)
      await sleep(80)
    }),
  ).rejects.toMatchObject({ code: 'LEASE_LOST' })
  expect(await effect('expired-void')).toBe(0)
  expect(await store.get(idem.recordId('expired-void'))).toBeNull()
}

/** A promise the test resolves when it chooses: a transaction held open until then. */
function gate(): { held: Promise<void>; release: () => void } {
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  return { held, release }
}
/** The claim's round trip on PostgreSQL: BEGIN and the settle function (a new key is settled, any other begun). */
const SETTLE_AND_BEGIN = /^BEGIN; SELECT \* FROM .*_settle"\(/

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describe('idem.transaction on a pg Pool: BEGIN with the claim, COMMIT with the completion', () => {
    let pool: pg.Pool
    let store: PostgresStore
    const schema = isolatedName('idem_tx_edges')
    const effects = `"${schema}"."effects"`
    /** What went out on the connections, one entry per round trip (client.query call). */
    let sent: string[] = []
    let db: SqlDatabase<pg.PoolClient>

    beforeAll(async () => {
      pool = newPool(4)
      store = new PostgresStore({ client: pool, schema })
      await store.ensureSchema()
      await pool.query(`CREATE TABLE ${effects} (id text PRIMARY KEY, n integer NOT NULL)`)
      // Typed as the pool fromPg expects; at run time it also has the query method a pool has.
      const recording: PgPoolLike = {
        get totalCount() {
          return pool.totalCount
        },
        query: (text: string, values?: unknown[]) => pool.query(text, values),
        async connect() {
          const client = await pool.connect()
          return {
            query(text: string, values?: unknown[]) {
              sent.push(text)
              return client.query(text, values)
            },
            release: (destroy?: boolean | Error) => client.release(destroy),
          }
        },
      } as PgPoolLike
      db = fromPg<pg.PoolClient>(recording)
      // A store's first transaction asks once whether the settle function exists: out of the counts below.
      await new Idempotency({ store }).transaction(db, { key: 'first' }, () => undefined)
    })
    afterAll(async () => {
      await dropPgSchema(pool, schema)
      await pool.end()
    })

    const write = (key: string) => async (_tx: unknown, ctx: { sql: SqlExecutor }) => {
      await ctx.sql.execute(`INSERT INTO ${effects} (id, n) VALUES ($1, 1)`, [key])
      return { key }
    }
    const effect = async (id: string) => (await pool.query(`SELECT n FROM ${effects} WHERE id = $1`, [id])).rowCount

    it('sends a new key in three round trips and a replay in two, BEGIN and COMMIT never alone', async () => {
      const idem = new Idempotency({ store })
      sent = []
      expect(await idem.transaction(db, { key: 'rt' }, write('rt'))).toEqual({
        status: 'executed',
        value: { key: 'rt' },
      })
      expect(sent).toHaveLength(3)
      expect(sent[0]).toMatch(SETTLE_AND_BEGIN)
      expect(sent[1]).toMatch(/^INSERT INTO /)
      expect(sent[2]).toMatch(/; COMMIT$/)
      sent = []
      expect(await idem.transaction(db, { key: 'rt' }, write('rt'))).toEqual({
        status: 'replayed',
        value: { key: 'rt' },
      })
      expect(sent).toEqual([expect.stringMatching(SETTLE_AND_BEGIN), 'COMMIT'])
      expect(await effect('rt')).toBe(1)
      // The value replaced the settled result; retention counts from the claim, as the claim wrote it.
      const record = await store.get(idem.recordId('rt'))
      expect(record).toMatchObject({ state: 'completed', token: null, attempt: 1 })
      expect(record?.expiresAt).toBe((record?.createdAt ?? 0) + 24 * 3600_000)
    })

    it('settles a new key in its claim: a function that returns nothing ends with a bare COMMIT', async () => {
      const idem = new Idempotency({ store })
      sent = []
      const nothing = async (tx: unknown, ctx: { sql: SqlExecutor }) => {
        await write('void')(tx, ctx)
      }
      expect(await idem.transaction(db, { key: 'void' }, nothing)).toEqual({ status: 'executed', value: undefined })
      expect(sent).toEqual([expect.stringMatching(SETTLE_AND_BEGIN), expect.stringMatching(/^INSERT INTO /), 'COMMIT'])
      const record = await store.get(idem.recordId('void'))
      expect(record).toMatchObject({ state: 'completed', token: null, leaseUntil: null, attempt: 1 })
      expect(record?.result).toBe(encodeValue(undefined, 1 << 20, record?.id ?? ''))
      expect(record?.expiresAt).toBe((record?.createdAt ?? 0) + 24 * 3600_000)
      sent = []
      expect(await idem.transaction(db, { key: 'void' }, nothing)).toEqual({ status: 'replayed', value: undefined })
      expect(sent).toEqual([expect.stringMatching(SETTLE_AND_BEGIN), 'COMMIT'])
      expect(await effect('void')).toBe(1)
    })

    it('leaves nothing of a settled claim when its function throws, and a racer waits for it and then runs', async () => {
      const idem = new Idempotency({ store })
      const { held, release } = gate()
      const first = idem.transaction(db, { key: 'racer' }, async (tx, ctx) => {
        await write('racer-first')(tx, ctx)
        await held
        throw new Error('first gives up')
      })
      await sleep(50)
      let secondRan = false
      const second = idem.transaction(db, { key: 'racer' }, async (tx, ctx) => {
        secondRan = true
        await write('racer-second')(tx, ctx)
      })
      await sleep(50)
      expect(secondRan).toBe(false)
      release()
      await expect(first).rejects.toThrow('first gives up')
      expect(await second).toEqual({ status: 'executed', value: undefined })
      expect([await effect('racer-first'), await effect('racer-second')]).toEqual([0, 1])
    })

    it('makes a racer of a settled claim that commits replay its outcome without running', async () => {
      const idem = new Idempotency({ store })
      const { held, release } = gate()
      const first = idem.transaction(db, { key: 'racer-ok' }, async (tx, ctx) => {
        await write('racer-ok')(tx, ctx)
        await held
      })
      await sleep(50)
      const second = idem.transaction(db, { key: 'racer-ok' }, () => {
        throw new Error('a duplicate ran')
      })
      await sleep(50)
      release()
      expect(await first).toEqual({ status: 'executed', value: undefined })
      expect(await second).toEqual({ status: 'replayed', value: undefined })
      expect(await effect('racer-ok')).toBe(1)
    })

    it('claims through begin and completes where the schema has no settle function (created before it)', async () => {
      // A schema as an earlier version left it: created, then without the function; the store that
      // uses it never ran ensureSchema() itself (which would have created it).
      await new PostgresStore({ client: pool, schema, table: 'older_records' }).ensureSchema()
      await pool.query(`DROP FUNCTION "${schema}"."older_records_settle"`)
      const older = new PostgresStore({ client: pool, schema, table: 'older_records' })
      const idem = new Idempotency({ store: older })
      sent = []
      expect(await idem.transaction(db, { key: 'older' }, () => undefined)).toEqual({
        status: 'executed',
        value: undefined,
      })
      expect(sent).toEqual([
        expect.stringMatching(/to_regprocedure/),
        expect.stringMatching(/^BEGIN; SELECT \* FROM .*_begin"\(/),
        expect.stringMatching(/; COMMIT$/),
      ])
      expect(await older.get(idem.recordId('older'))).toMatchObject({ state: 'completed', token: null })
      sent = []
      await idem.transaction(db, { key: 'older-2' }, () => undefined)
      expect(sent).toHaveLength(2)
    })

    it('answers a nested call for the same key on the same transaction in progress, not with the settled record', async () => {
      const idem = new Idempotency({ store, waitTimeout: 20 })
      let nested: unknown
      await idem.transaction(db, { key: 'nested' }, async (tx) => {
        nested = await idem
          .transaction(fromPg<pg.PoolClient>(tx), { key: 'nested' }, () => 'inner ran')
          .catch((error: unknown) => error)
      })
      expect(nested).toMatchObject({ code: 'IN_PROGRESS' })
      expect(await idem.transaction(db, { key: 'nested' }, () => 'again')).toEqual({
        status: 'replayed',
        value: undefined,
      })
    })

    it('replays byte for byte what it inlined: quotes, backslashes and non-ASCII in scope, fingerprint and value', async () => {
      const idem = new Idempotency({ store, scope: `o'neil\\tenant` })
      const value = { text: `it's a \\ back\\slash, ünïcödé, "quoted", \\x00 and 'E'` }
      const run = () => idem.transaction(db, { key: `k'\\1`, fingerprint: `fp'\\"` }, () => value)
      expect(await run()).toEqual({ status: 'executed', value })
      expect(await run()).toEqual({ status: 'replayed', value })
      const record = await store.get(idem.recordId(`k'\\1`))
      expect(record).toMatchObject({ state: 'completed', fingerprint: `fp'\\"` })
      expect(record?.result).toBe(encodeValue(value, 1 << 20, record?.id ?? ''))
    })

    it('stores a value too large to inline through a parameter, in one round trip more', async () => {
      const idem = new Idempotency({ store })
      const value = 'x'.repeat(MAX_INLINED_BYTES + 10)
      sent = []
      expect(await idem.transaction(db, { key: 'large' }, () => value)).toEqual({ status: 'executed', value })
      expect(sent).toEqual([expect.stringMatching(SETTLE_AND_BEGIN), expect.stringMatching(/_resettle"\(/), 'COMMIT'])
      expect(await idem.transaction(db, { key: 'large' }, () => 'other')).toEqual({ status: 'replayed', value })
    })

    it('commits nothing when the record expired while the function ran, and the connection stays usable', async () => {
      const idem = new Idempotency({ store, ttl: 30, lease: 30 })
      await expect(
        idem.transaction(db, { key: 'expired' }, async (tx, ctx) => {
          const result = await write('expired')(tx, ctx)
          await sleep(80)
          return result
        }),
      ).rejects.toMatchObject({ code: 'LEASE_LOST' })
      expect(await effect('expired')).toBe(0)
      expect(await store.get(idem.recordId('expired'))).toBeNull()
      await expectVoidOutlivingTtlCommitsNothing(idem, db, write, effect, store)
      const again = new Idempotency({ store })
      for (let i = 0; i < 4; i++) {
        expect((await again.transaction(db, { key: 'expired' }, write(`after-${i}`))).status).toBe(
          i === 0 ? 'executed' : 'replayed',
        )
      }
    })
  })
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe('idem.transaction on a mysql2 Pool: the claim procedure begins, the completion procedure commits', () => {
    let pool: mysql.Pool
    const table = isolatedName('idem_tx_edges')
    const effects = `\`${table}_effects\``
    let sent: string[] = []
    let db: SqlDatabase<unknown>

    beforeAll(async () => {
      pool = createTestPool(4)
      await new MysqlStore({ client: pool, table }).ensureSchema()
      await pool.query(`CREATE TABLE ${effects} (id VARCHAR(255) PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB`)
      db = fromMysql2({
        query: (sql: string, values?: unknown[]) => pool.query(sql, values),
        async getConnection() {
          const connection = await pool.getConnection()
          return {
            query(sql: string, values?: unknown[]) {
              sent.push(sql)
              return connection.query(sql, values)
            },
            beginTransaction() {
              sent.push('START TRANSACTION')
              return connection.beginTransaction()
            },
            commit() {
              sent.push('COMMIT')
              return connection.commit()
            },
            rollback() {
              sent.push('ROLLBACK')
              return connection.rollback()
            },
            release: () => connection.release(),
            destroy: () => connection.destroy(),
          }
        },
      })
    })
    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS ${effects}`)
      await dropMysqlSchema(pool, table)
      await pool.end()
    })

    const write = (key: string) => async (_tx: unknown, ctx: { sql: SqlExecutor }) => {
      await ctx.sql.execute(`INSERT INTO ${effects} (id, n) VALUES (?, 1)`, [key])
      return { key }
    }
    const effect = async (id: string) => {
      const [rows] = (await pool.query(`SELECT n FROM ${effects} WHERE id = ?`, [id])) as unknown as [unknown[]]
      return rows.length
    }

    it('sends a new key in three round trips and a replay in one, without START TRANSACTION or COMMIT of their own', async () => {
      const idem = new Idempotency({ store: new MysqlStore({ client: pool, table }) })
      sent = []
      expect(await idem.transaction(db, { key: 'rt' }, write('rt'))).toEqual({
        status: 'executed',
        value: { key: 'rt' },
      })
      const p = procedureNames(table)
      expect(sent).toEqual([
        `CALL \`${p.claim}\`(?, ?, ?, ?, ?, ?)`,
        `INSERT INTO ${effects} (id, n) VALUES (?, 1)`,
        `CALL \`${p.complete}\`(?, ?, ?, ?, ?)`,
      ])
      sent = []
      expect(await idem.transaction(db, { key: 'rt' }, write('rt'))).toEqual({
        status: 'replayed',
        value: { key: 'rt' },
      })
      // A duplicate writes nothing, and the claim procedure commits its empty transaction itself.
      expect(sent).toEqual([`CALL \`${p.claim}\`(?, ?, ?, ?, ?, ?)`])
      expect(await effect('rt')).toBe(1)
    })

    it('never settles a claim: a session at READ UNCOMMITTED reads it in progress while the function runs', async () => {
      const store = new MysqlStore({ client: pool, table })
      const idem = new Idempotency({ store })
      const reader = await pool.getConnection()
      try {
        await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED')
        const dirty = new MysqlStore({ client: reader, table })
        const seen: (string | undefined)[] = []
        const read = (key: string) => async () => {
          seen.push((await dirty.get(idem.recordId(key)))?.state)
        }
        // A function that returns nothing (PostgreSQL and SQLite would settle its claim), then one
        // that returns a value: neither claim is readable as completed before COMMIT.
        await idem.transaction(db, { key: 'dirty-void' }, read('dirty-void'))
        await idem.transaction(db, { key: 'dirty-value' }, async () => {
          await read('dirty-value')()
          return { key: 'dirty-value' }
        })
        expect(seen).toEqual(['in_progress', 'in_progress'])
        for (const key of ['dirty-void', 'dirty-value']) {
          expect((await dirty.get(idem.recordId(key)))?.state).toBe('completed')
        }
      } finally {
        await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ')
        reader.release()
      }
    })

    it('commits nothing when the record expired while the function ran, and the connection stays usable', async () => {
      const store = new MysqlStore({ client: pool, table })
      const idem = new Idempotency({ store, ttl: 30, lease: 30 })
      sent = []
      await expect(
        idem.transaction(db, { key: 'expired' }, async (tx, ctx) => {
          const result = await write('expired')(tx, ctx)
          await sleep(80)
          return result
        }),
      ).rejects.toMatchObject({ code: 'LEASE_LOST' })
      expect(sent.at(-1)).toBe('ROLLBACK')
      expect(await effect('expired')).toBe(0)
      expect(await store.get(idem.recordId('expired'))).toBeNull()
      await expectVoidOutlivingTtlCommitsNothing(idem, db, write, effect, store)
      const again = new Idempotency({ store })
      for (let i = 0; i < 4; i++) {
        expect((await again.transaction(db, { key: 'expired' }, write(`after-${i}`))).status).toBe(
          i === 0 ? 'executed' : 'replayed',
        )
      }
    })

    it('claims and completes with plain statements where the procedures are missing (schema not yet updated)', async () => {
      const old = isolatedName('idem_tx_old')
      const store = new MysqlStore({ client: pool, table: old })
      await store.ensureSchema()
      const p = procedureNames(old)
      for (const name of [p.claim, p.complete]) await pool.query(`DROP PROCEDURE \`${name}\``)
      try {
        const idem = new Idempotency({ store })
        sent = []
        expect(await idem.transaction(db, { key: 'old' }, write('old'))).toEqual({
          status: 'executed',
          value: { key: 'old' },
        })
        expect(sent[0]).toBe(`CALL \`${p.claim}\`(?, ?, ?, ?, ?, ?)`)
        expect(sent[1]).toBe('START TRANSACTION')
        expect(sent.at(-1)).toBe('COMMIT')
        expect(sent.some((s) => s.startsWith(`CALL \`${p.complete}\``))).toBe(false)
        expect(await idem.transaction(db, { key: 'old' }, write('old'))).toEqual({
          status: 'replayed',
          value: { key: 'old' },
        })
        expect(await effect('old')).toBe(1)
      } finally {
        await dropMysqlSchema(pool, old)
      }
    })
  })
}
