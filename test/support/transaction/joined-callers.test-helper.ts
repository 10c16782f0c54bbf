// The callers of the joined-transaction tests: a transaction of the caller's own on one adapter
// (pg, mysql2, better-sqlite3, Kysely, Knex, Drizzle), its own write, and the function's write
// through the handle Idem passes on.

import Database from 'better-sqlite3'
import { sql as drizzleSql, TransactionRollbackError } from 'drizzle-orm'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import type { Knex } from 'knex'
import { sql as kyselySql, type Transaction } from 'kysely'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { fromBetterSqlite3 } from '../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase, SqlDialect } from '../../../src/sql/core/executor.js'
import { type DrizzleAsyncLike, fromDrizzle } from '../../../src/sql/drizzle/drizzle-database.js'
import { fromKnex } from '../../../src/sql/knex/knex-database.js'
import { fromKysely } from '../../../src/sql/kysely/kysely-database.js'
import { fromMysql2 } from '../../../src/sql/mysql2/mysql2-database.js'
import { fromPg } from '../../../src/sql/pg/pg-database.js'
import { openDrizzle, openKnex, openKysely, sqliteFile } from '../sql/orm-rigs.test-helper.js'
import { createTestPool } from '../stores/mysql/mysql.test-helper.js'
import { newPool } from '../stores/postgres/postgres.test-helper.js'
import type { TransactionRig } from './transaction-rigs.test-helper.js'

type Write = (id: string) => Promise<unknown>

/** A caller with a transaction of its own, on one adapter. */
export interface Caller {
  /** Open a transaction, run `body` in it (the adapter over its handle, and the caller's own write), then end it. */
  within(end: 'commit' | 'rollback', body: (db: SqlDatabase<unknown>, write: Write) => Promise<void>): Promise<void>
  /** The function's business write, through the handle Idem passes it. */
  write(tx: unknown, id: string): Promise<unknown>
  /** The adapter over the pool or database object: Idem opens the transaction. */
  standalone: SqlDatabase<unknown>
  close(): Promise<void>
}

export type CallerFactory = (rig: TransactionRig) => Caller

const insertSql = (rig: TransactionRig, p: string) => `INSERT INTO ${rig.effects} (id, n) VALUES (${p}, 1)`
const rollbackSignal = new Error('the caller rolls back')

export const pgCaller: CallerFactory = (rig) => {
  const pool = newPool(4)
  const insert = insertSql(rig, '$1')
  return {
    async within(end, body) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await body(fromPg(client) as SqlDatabase<unknown>, (id) => client.query(insert, [id]))
        await client.query(end === 'commit' ? 'COMMIT' : 'ROLLBACK')
      } catch (error) {
        await client.query('ROLLBACK')
        throw error
      } finally {
        client.release()
      }
    },
    write: (tx, id) => (tx as pg.PoolClient).query(insert, [id]),
    standalone: fromPg(pool) as SqlDatabase<unknown>,
    close: () => pool.end(),
  }
}

export const mysql2Caller: CallerFactory = (rig) => {
  const pool = createTestPool(4)
  const insert = insertSql(rig, '?')
  return {
    async within(end, body) {
      const connection = await pool.getConnection()
      try {
        await connection.beginTransaction()
        await body(fromMysql2(connection) as SqlDatabase<unknown>, (id) => connection.query(insert, [id]))
        await (end === 'commit' ? connection.commit() : connection.rollback())
      } catch (error) {
        await connection.rollback()
        throw error
      } finally {
        connection.release()
      }
    },
    write: (tx, id) => (tx as mysql.PoolConnection).query(insert, [id]),
    standalone: fromMysql2(pool) as SqlDatabase<unknown>,
    close: () => pool.end(),
  }
}

export const betterSqlite3Caller: CallerFactory = (rig) => {
  const connection = new Database(sqliteFile(rig))
  connection.pragma('busy_timeout = 10000')
  const insert = insertSql(rig, '?')
  return {
    async within(end, body) {
      connection.exec('BEGIN IMMEDIATE')
      try {
        await body(fromBetterSqlite3(connection) as SqlDatabase<unknown>, async (id) =>
          connection.prepare(insert).run(id),
        )
        connection.exec(end === 'commit' ? 'COMMIT' : 'ROLLBACK')
      } catch (error) {
        if (connection.inTransaction) connection.exec('ROLLBACK')
        throw error
      }
    },
    write: async (tx, id) => (tx as Database.Database).prepare(insert).run(id),
    standalone: fromBetterSqlite3(connection) as SqlDatabase<unknown>,
    close: async () => {
      connection.close()
    },
  }
}

export const kyselyCaller =
  (dialect: SqlDialect): CallerFactory =>
  (rig) => {
    const { instance, close } = openKysely(dialect, dialect === 'sqlite' ? sqliteFile(rig) : undefined)
    // biome-ignore lint/suspicious/noExplicitAny: the effects table is not part of a Kysely DB type here
    const insert = (tx: Transaction<any>, id: string) =>
      kyselySql`INSERT INTO ${kyselySql.raw(rig.effects)} (id, n) VALUES (${id}, 1)`.execute(tx)
    return {
      async within(end, body) {
        await instance
          .transaction()
          .execute(async (trx) => {
            await body(fromKysely(trx) as SqlDatabase<unknown>, (id) => insert(trx, id))
            if (end === 'rollback') throw rollbackSignal
          })
          .catch((error: unknown) => {
            if (error !== rollbackSignal) throw error
          })
      },
      // biome-ignore lint/suspicious/noExplicitAny: as above
      write: (tx, id) => insert(tx as Transaction<any>, id),
      standalone: fromKysely(instance) as SqlDatabase<unknown>,
      close,
    }
  }

export const knexCaller =
  (dialect: SqlDialect): CallerFactory =>
  (rig) => {
    const { instance, close } = openKnex(dialect, dialect === 'sqlite' ? sqliteFile(rig) : undefined)
    const insert = insertSql(rig, '?')
    return {
      async within(end, body) {
        const trx = await instance.transaction()
        try {
          await body(fromKnex(trx) as SqlDatabase<unknown>, (id) => trx.raw(insert, [id]))
          await (end === 'commit' ? trx.commit() : trx.rollback())
        } catch (error) {
          await trx.rollback()
          throw error
        }
      },
      write: (tx, id) => (tx as Knex.Transaction).raw(insert, [id]),
      standalone: fromKnex(instance) as SqlDatabase<unknown>,
      close,
    }
  }

export const drizzleCaller =
  (dialect: SqlDialect): CallerFactory =>
  (rig) => {
    const { instance, close } = openDrizzle(dialect, dialect === 'sqlite' ? sqliteFile(rig) : undefined)
    const insert = (id: string) => drizzleSql`INSERT INTO ${drizzleSql.raw(rig.effects)} (id, n) VALUES (${id}, 1)`
    // biome-ignore lint/suspicious/noExplicitAny: one of three Drizzle databases, each matching one overload
    const standalone = fromDrizzle(instance as any) as SqlDatabase<unknown>
    if (dialect === 'sqlite') {
      // Drizzle's better-sqlite3 transactions are synchronous: the caller sends BEGIN itself.
      const db = instance as BetterSQLite3Database
      return {
        async within(end, body) {
          db.run(drizzleSql`BEGIN IMMEDIATE`)
          try {
            await body(fromDrizzle(db) as SqlDatabase<unknown>, async (id) => db.run(insert(id)))
            db.run(end === 'commit' ? drizzleSql`COMMIT` : drizzleSql`ROLLBACK`)
          } catch (error) {
            if ((db as unknown as { $client: Database.Database }).$client.inTransaction) db.run(drizzleSql`ROLLBACK`)
            throw error
          }
        },
        write: async (tx, id) => (tx as BetterSQLite3Database).run(insert(id)),
        standalone,
        close,
      }
    }
    interface AsyncTx {
      execute(query: ReturnType<typeof insert>): Promise<unknown>
      rollback(): never
    }
    const db = instance as unknown as { transaction(fn: (tx: AsyncTx) => Promise<void>): Promise<void> }
    return {
      async within(end, body) {
        await db
          .transaction(async (tx) => {
            await body(fromDrizzle(tx as unknown as DrizzleAsyncLike<AsyncTx>) as SqlDatabase<unknown>, (id) =>
              tx.execute(insert(id)),
            )
            if (end === 'rollback') tx.rollback()
          })
          .catch((error: unknown) => {
            if (!(error instanceof TransactionRollbackError)) throw error
          })
      },
      write: (tx, id) => (tx as AsyncTx).execute(insert(id)),
      standalone,
      close,
    }
  }
