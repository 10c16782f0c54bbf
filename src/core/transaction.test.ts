// Transaction mode on each SQL database through its driver adapter (pg, mysql2, better-sqlite3).

import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { mysqlRig, postgresRig, sqliteRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { describeTransactionMode } from '../../test/support/transaction/transaction-suite.test-helper.js'
import { fromPg } from '../sql/pg/pg-database.js'
import { PostgresStore } from '../stores/postgres/postgres-store.js'
import { Idempotency } from './idempotency.js'

describeTransactionMode('SQLite (better-sqlite3)', sqliteRig)
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port))
  describeTransactionMode('PostgreSQL (pg)', postgresRig)
if (await requireService('MariaDB', SERVICES.MariaDB.port)) describeTransactionMode('MariaDB (mysql2)', mysqlRig)

describe('idem.transaction and run() sharing one SQLite connection', () => {
  it('keeps a run() claim out of a transaction that is open on the connection, even one that rolls back', async () => {
    const rig = await sqliteRig()
    try {
      const idem = rig.idem()
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      const failing = idem.transaction(rig.db, { key: 'shared-a' }, async (_tx, ctx) => {
        await rig.addEffect(ctx.sql, 'shared-a')
        await gate
        throw new Error('rolled back')
      })
      // Starts while the transaction is open: it must wait for it, not run its claim inside it.
      const independent = idem.run({ key: 'shared-b' }, () => 'b done')
      await new Promise((resolve) => setTimeout(resolve, 20))
      release()
      await expect(failing).rejects.toThrow('rolled back')
      expect(await independent).toEqual({ status: 'executed', value: 'b done' })
      expect(await rig.store.get(idem.recordId('shared-b'))).toMatchObject({ state: 'completed' })
      expect(await rig.store.get(idem.recordId('shared-a'))).toBeNull()
      expect(await rig.effect('shared-a')).toBe(0)
    } finally {
      await rig.cleanup()
    }
  })
})

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describe('idem.transaction on PostgreSQL under REPEATABLE READ', () => {
    it('replays to a duplicate that waited for the first, retrying the serialization failure of its claim', async () => {
      const pool = new pg.Pool({
        connectionString: SERVICES.PostgreSQL.url,
        max: 4,
        options: '-c default_transaction_isolation=repeatable\\ read',
      })
      const schema = isolatedName('idem_tx_rr')
      try {
        const store = new PostgresStore({ client: pool, schema })
        await store.ensureSchema()
        const idem = new Idempotency({ store })
        let release!: () => void
        const gate = new Promise<void>((resolve) => {
          release = resolve
        })
        let claimed!: () => void
        const firstClaimed = new Promise<void>((resolve) => {
          claimed = resolve
        })
        const first = idem.transaction(fromPg(pool), { key: 'rr-1' }, async () => {
          claimed()
          await gate
          return 'first'
        })
        await firstClaimed
        const second = idem.transaction(fromPg(pool), { key: 'rr-1' }, () => 'second')
        // Let the second reach the record's lock, so that it waits for the first to commit.
        await new Promise((resolve) => setTimeout(resolve, 100))
        release()
        expect(await first).toEqual({ status: 'executed', value: 'first' })
        expect(await second).toEqual({ status: 'replayed', value: 'first' })
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      }
    })
  })
}
