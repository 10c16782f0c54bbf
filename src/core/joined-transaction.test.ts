// Transaction mode joining a transaction the caller opened, through each of the six adapters: the
// caller's commit or rollback decides for its own write, the function's write and Idem's record
// alike, and a function that fails undoes only its own part under the savepoint.

import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { createTestPool } from '../../test/support/stores/mysql/mysql.test-helper.js'
import { newPool } from '../../test/support/stores/postgres/postgres.test-helper.js'
import {
  betterSqlite3Caller,
  type Caller,
  type CallerFactory,
  drizzleCaller,
  knexCaller,
  kyselyCaller,
  mysql2Caller,
  pgCaller,
} from '../../test/support/transaction/joined-callers.test-helper.js'
import {
  mysqlRig,
  postgresRig,
  sqliteRig,
  type TransactionRig,
} from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { fromMysql2 } from '../sql/mysql2/mysql2-database.js'
import { assertMysql2InTransaction } from '../sql/mysql2/mysql2-in-transaction.js'
import { fromPg } from '../sql/pg/pg-database.js'

function describeJoined(database: string, makeRig: () => Promise<TransactionRig>, adapters: [string, CallerFactory][]) {
  describe(`idem.transaction joining a caller's transaction on ${database}`, () => {
    let rig: TransactionRig
    const callers = new Map<string, Caller>()
    beforeAll(async () => {
      rig = await makeRig()
      for (const [name, make] of adapters) callers.set(name, make(rig))
    })
    afterAll(async () => {
      for (const caller of callers.values()) await caller.close()
      await rig?.cleanup()
    })

    for (const [name] of adapters) {
      const key = (what: string) => `${name}-${what}`

      it(`${name}: commits the caller's write, the function's write and the record together`, async () => {
        const caller = callers.get(name) as Caller
        const idem = rig.idem()
        let outcome: unknown
        await caller.within('commit', async (db, write) => {
          await write(key('commit-caller'))
          outcome = await idem.transaction(db, { key: key('commit') }, async (tx) => {
            await caller.write(tx, key('commit-fn'))
            return 'done'
          })
        })
        expect(outcome).toEqual({ status: 'executed', value: 'done' })
        expect(await rig.effect(key('commit-caller'))).toBe(1)
        expect(await rig.effect(key('commit-fn'))).toBe(1)
        expect(await rig.store.get(idem.recordId(key('commit')))).toMatchObject({ state: 'completed' })
      })

      it(`${name}: keeps none of it when the caller rolls back, and a later transaction on the key executes`, async () => {
        const caller = callers.get(name) as Caller
        const idem = rig.idem()
        await caller.within('rollback', async (db, write) => {
          await write(key('rollback-caller'))
          await idem.transaction(db, { key: key('rollback') }, async (tx) => {
            await caller.write(tx, key('rollback-fn'))
          })
        })
        expect(await rig.effect(key('rollback-caller'))).toBe(0)
        expect(await rig.effect(key('rollback-fn'))).toBe(0)
        expect(await rig.store.get(idem.recordId(key('rollback')))).toBeNull()
        const later = await idem.transaction(caller.standalone, { key: key('rollback') }, async (tx) => {
          await caller.write(tx, key('rollback-later'))
          return 'again'
        })
        expect(later).toEqual({ status: 'executed', value: 'again' })
        expect(await rig.effect(key('rollback-later'))).toBe(1)
      })

      it(`${name}: undoes only the function's part when its SQL fails and the caller commits`, async () => {
        const caller = callers.get(name) as Caller
        const idem = rig.idem()
        await caller.within('commit', async (db, write) => {
          await write(key('throws-caller'))
          const failed = idem.transaction(db, { key: key('throws') }, async (tx) => {
            await caller.write(tx, key('throws-fn'))
            await caller.write(tx, key('throws-fn')) // a duplicate key: the statement fails
          })
          await expect(failed).rejects.toThrow()
          // On PostgreSQL the failed statement aborts the transaction unless rolled back to the savepoint.
          await write(key('throws-after'))
        })
        expect(await rig.effect(key('throws-caller'))).toBe(1)
        expect(await rig.effect(key('throws-after'))).toBe(1)
        expect(await rig.effect(key('throws-fn'))).toBe(0)
        expect(await rig.store.get(idem.recordId(key('throws')))).toBeNull()
      })
    }
  })
}

describeJoined('SQLite', sqliteRig as () => Promise<TransactionRig>, [
  ['better-sqlite3', betterSqlite3Caller],
  ['Kysely', kyselyCaller('sqlite')],
  ['Knex', knexCaller('sqlite')],
  ['Drizzle', drizzleCaller('sqlite')],
])

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeJoined('PostgreSQL', postgresRig as () => Promise<TransactionRig>, [
    ['pg', pgCaller],
    ['Kysely', kyselyCaller('postgres')],
    ['Knex', knexCaller('postgres')],
    ['Drizzle', drizzleCaller('postgres')],
  ])

  describe('fromPg on a client outside a transaction', () => {
    let rig: TransactionRig
    let pool: pg.Pool
    beforeAll(async () => {
      rig = await postgresRig()
      pool = newPool(2)
    })
    afterAll(async () => {
      await pool?.end()
      await rig?.cleanup()
    })

    it('fails with a TypeError before running the function, and writes nothing', async () => {
      const client = await pool.connect()
      try {
        const before = await rig.records()
        let ran = false
        const outcome = rig.idem().transaction(fromPg(client), { key: 'no-begin' }, async (_tx, ctx) => {
          ran = true
          await rig.addEffect(ctx.sql, 'no-begin')
        })
        await expect(outcome).rejects.toThrow(TypeError)
        await expect(outcome).rejects.toThrow(/not inside a transaction/)
        expect(ran).toBe(false)
        expect(await rig.effect('no-begin')).toBe(0)
        expect(await rig.records()).toBe(before)
      } finally {
        client.release()
      }
    })
  })
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describeJoined('MariaDB', mysqlRig as () => Promise<TransactionRig>, [
    ['mysql2', mysql2Caller],
    ['Kysely', kyselyCaller('mysql')],
    ['Knex', knexCaller('mysql')],
    ['Drizzle', drizzleCaller('mysql')],
  ])

  describe('assertMysql2InTransaction', () => {
    let pool: mysql.Pool
    beforeAll(() => {
      pool = createTestPool(2)
    })
    afterAll(() => pool?.end())

    it('refuses a connection outside a transaction, where SAVEPOINT would pass and every statement commit', async () => {
      const connection = await pool.getConnection()
      try {
        await connection.query('SAVEPOINT idem_probe') // accepted, though there is no transaction
        await expect(assertMysql2InTransaction(connection, 'fromMysql2')).rejects.toThrow(TypeError)
      } finally {
        connection.release()
      }
    })

    // Skipped until fromMysql2 calls assertMysql2InTransaction before joining (see the report to the lead):
    // today the claim and the function's writes commit one by one, and RELEASE SAVEPOINT then fails.
    it('makes fromMysql2 on a connection outside a transaction fail with a TypeError and write nothing', async () => {
      const rig = await mysqlRig()
      const connection = await pool.getConnection()
      try {
        let ran = false
        const outcome = rig.idem().transaction(fromMysql2(connection), { key: 'no-begin' }, async (_tx, ctx) => {
          ran = true
          await rig.addEffect(ctx.sql, 'no-begin')
        })
        await expect(outcome).rejects.toThrow(TypeError)
        expect(ran).toBe(false)
        expect(await rig.effect('no-begin')).toBe(0)
        expect(await rig.records()).toBe(0)
      } finally {
        connection.release()
        await rig.cleanup()
      }
    })

    it('lets through a connection after beginTransaction, and one with autocommit off', async () => {
      const connection = await pool.getConnection()
      try {
        await connection.beginTransaction()
        await expect(assertMysql2InTransaction(connection, 'fromMysql2')).resolves.toBeUndefined()
        await connection.rollback()
        await connection.query('SET autocommit = 0')
        await expect(assertMysql2InTransaction(connection, 'fromMysql2')).resolves.toBeUndefined()
        await connection.query('ROLLBACK')
        await connection.query('SET autocommit = 1')
      } finally {
        connection.release()
      }
    })
  })
}
