import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../test/services.js'
import { chain, collect, keyring, signer, verifyStorage } from '../../test/support/audit/audit.test-helper.js'
import { newPool } from '../../test/support/stores/postgres/postgres.test-helper.js'
import { AuditLog } from './audit-log.js'
import { AuditIntegrityError } from './errors.js'
import { auditTableSchema, PostgresAuditStorage } from './postgres-storage.js'

describe('PostgresAuditStorage names', () => {
  it('validates the table name and quotes it', () => {
    const client = { query: async () => ({ rows: [], rowCount: 0 }) }
    for (const bad of ['', 'a-b', 'a"b', 'x; DROP TABLE y', '1abc', 'a'.repeat(64)]) {
      expect(() => new PostgresAuditStorage({ client, table: bad }), bad).toThrow(TypeError)
    }
    expect(new PostgresAuditStorage({ client }).table).toBe('idem_audit_log')
    expect(auditTableSchema('Audit')).toContain('CREATE TABLE IF NOT EXISTS "Audit"')
  })
})

if (await requireService('PostgreSQL', 5432)) {
  describe('PostgresAuditStorage on the server', () => {
    const pool = newPool(4)
    const tables: string[] = []
    const fresh = async () => {
      const table = isolatedName('idem_audit')
      tables.push(table)
      const storage = new PostgresAuditStorage({ client: pool, table })
      return { storage, table, schema: await storage.ensureSchema() }
    }
    afterAll(async () => {
      for (const table of tables) await pool.query(`DROP TABLE IF EXISTS "${table}"`)
      await pool.end()
    })

    it('appends in one statement and reads back in order; last() is the highest seq', async () => {
      const { storage, table, schema } = await fresh()
      expect(schema.revoked).toBe(true)
      expect(await storage.last()).toBeUndefined()
      expect(await collect(storage.read())).toEqual([])
      const entries = chain(4)
      await storage.append(entries.slice(0, 3))
      await storage.append(entries.slice(3))
      expect(await collect(storage.read())).toEqual(entries)
      expect(await storage.last()).toEqual(entries[3])
      expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 4 })
      // Stored as written, byte for byte.
      const { rows } = await pool.query(`SELECT entry FROM "${table}" WHERE seq = 2`)
      expect(rows[0].entry).toBe(JSON.stringify(entries[1]))
      await storage.close()
    })

    it('refuses a batch that reuses a seq, entirely: no fork, no half batch', async () => {
      const { storage } = await fresh()
      const entries = chain(3)
      await storage.append(entries.slice(0, 2))
      const fork = chain(2, entries[0])
      await expect(storage.append([...entries.slice(2), ...fork])).rejects.toThrow(/duplicate key|unique/i)
      expect(await collect(storage.read())).toEqual(entries.slice(0, 2))
    })

    it('revokes UPDATE, DELETE and TRUNCATE from PUBLIC; a writer with SELECT and INSERT cannot rewrite', async () => {
      const { storage, table } = await fresh()
      const publicGrants = async () => {
        const { rows } = await pool.query(
          `SELECT privilege_type FROM information_schema.role_table_grants
           WHERE table_name = $1 AND grantee = 'PUBLIC' ORDER BY privilege_type`,
          [table],
        )
        return rows.map((row: { privilege_type: string }) => row.privilege_type)
      }
      // Granted to everyone by mistake; ensureSchema (run again, as on every start) takes it back.
      await pool.query(`GRANT SELECT, UPDATE, DELETE, TRUNCATE ON "${table}" TO PUBLIC`)
      expect(await publicGrants()).toEqual(['DELETE', 'SELECT', 'TRUNCATE', 'UPDATE'])
      expect(await storage.ensureSchema()).toEqual({ revoked: true })
      expect(await publicGrants()).toEqual(['SELECT'])

      // A role given only what the docs say a writer gets cannot rewrite history.
      const role = isolatedName('idem_audit_writer')
      await pool.query(`CREATE ROLE "${role}"`)
      try {
        await pool.query(`GRANT SELECT, INSERT ON "${table}" TO "${role}"`)
        const client = await pool.connect()
        try {
          await client.query(`SET ROLE "${role}"`)
          const writer = new PostgresAuditStorage({ client, table })
          const entries = chain(2)
          await writer.append(entries)
          expect(await writer.last()).toEqual(entries[1])
          for (const statement of [
            `UPDATE "${table}" SET entry = 'x'`,
            `DELETE FROM "${table}"`,
            `TRUNCATE "${table}"`,
          ]) {
            await expect(client.query(statement), statement).rejects.toThrow(/permission denied/)
          }
          // ensureSchema as the writer: the table exists, the revoke is not its to do.
          expect(await writer.ensureSchema()).toEqual({ revoked: false })
        } finally {
          await client.query('RESET ROLE')
          client.release()
        }
      } finally {
        await pool.query(`DROP OWNED BY "${role}"`)
        await pool.query(`DROP ROLE "${role}"`)
      }
    })

    it('reads page by page (keyset on seq) across page boundaries', async () => {
      const { storage } = await fresh()
      const entries = chain(2345)
      await storage.append(entries)
      const read = await collect(storage.read())
      expect(read).toHaveLength(2345)
      expect(read.map((entry) => ('seq' in entry ? entry.seq : 0))).toEqual(entries.map((entry) => entry.seq))
      expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 2345 })
    })

    it('yields a row that is not JSON as torn (its seq as position); last() refuses to chain on it', async () => {
      const { storage, table } = await fresh()
      const entries = chain(2)
      await storage.append(entries)
      await pool.query(`INSERT INTO "${table}" (seq, entry) VALUES (3, '{"v":1,"se')`)
      const items = await collect(storage.read())
      expect(items[2]).toEqual({ torn: '{"v":1,"se', position: 3 })
      expect(await verifyStorage(storage)).toMatchObject({ ok: true, entries: 2, tornTail: { position: 3 } })
      await expect(storage.last()).rejects.toBeInstanceOf(AuditIntegrityError)
    })

    it('under AuditLog: resumes after a reopen, with checkpoints, and the whole log verifies', async () => {
      const { storage } = await fresh()
      let log = await AuditLog.open({ storage, keyring, signer, checkpoint: { everyEntries: 3 } })
      for (let i = 0; i < 4; i++) await log.record({ type: 'executed', i })
      await log.close()
      log = await AuditLog.open({ storage, keyring, signer, checkpoint: { everyEntries: 3 } })
      expect(log.stats.lastSeq).toBe(6)
      for (let i = 0; i < 2; i++) await log.record({ type: 'executed', i })
      await log.close()
      expect(await verifyStorage(storage)).toEqual({ ok: true, entries: 6, checkpoints: 3, signedUpTo: 8, unsigned: 0 })
    })
  })
}
