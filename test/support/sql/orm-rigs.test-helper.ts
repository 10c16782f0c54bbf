// Rigs for the ORM adapters: each driver rig's store, effects table and counters, with Kysely, Knex
// or Drizzle opened on a connection of its own to the same database, and `db` their adapter.

import Database from 'better-sqlite3'
import { type BetterSQLite3Database, drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3'
import { drizzle as drizzleMysql, type MySql2Database } from 'drizzle-orm/mysql2'
import { drizzle as drizzlePg, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import knex, { type Knex } from 'knex'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely'
import { createPool } from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../../../src/sql/core/executor.js'
import { fromDrizzle } from '../../../src/sql/drizzle/drizzle-database.js'
import { fromKnex } from '../../../src/sql/knex/knex-database.js'
import { fromKysely } from '../../../src/sql/kysely/kysely-database.js'
import type { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js'
import { MYSQL_URL } from '../stores/mysql/mysql.test-helper.js'
import { newPool, PG_URL } from '../stores/postgres/postgres.test-helper.js'
import { mysqlRig, postgresRig, sqliteRig, type TransactionRig } from '../transaction/transaction-rigs.test-helper.js'

/** An ORM instance on a rig's database, and how to close it. */
export interface Opened<T> {
  instance: T
  close(): Promise<void>
}

export function driverRig(dialect: SqlDialect): Promise<TransactionRig> {
  if (dialect === 'postgres') return postgresRig() as Promise<TransactionRig>
  if (dialect === 'mysql') return mysqlRig() as Promise<TransactionRig>
  return sqliteRig() as Promise<TransactionRig>
}

/** The SQLite rig's database file (its store's connection is on it). */
export function sqliteFile(rig: TransactionRig): string {
  // The store's connection is a better-sqlite3 Database, typed by the store as the part it uses.
  return ((rig.store as SqliteStore).db as unknown as Database.Database).name
}

function sqliteConnection(file: string): Database.Database {
  const connection = new Database(file)
  // Idem's store writes on a connection of its own: wait for its lock rather than fail.
  connection.pragma('busy_timeout = 10000')
  return connection
}

// biome-ignore lint/suspicious/noExplicitAny: the rigs query tables Kysely's DB type does not describe
type AnyKysely = Kysely<any>

export function openKysely(dialect: SqlDialect, file = ':memory:'): Opened<AnyKysely> {
  let instance: AnyKysely
  if (dialect === 'postgres') {
    instance = new Kysely({ dialect: new PostgresDialect({ pool: newPool(10) }) })
  } else if (dialect === 'mysql') {
    instance = new Kysely({ dialect: new MysqlDialect({ pool: createPool({ uri: MYSQL_URL, connectionLimit: 10 }) }) })
  } else {
    instance = new Kysely({ dialect: new SqliteDialect({ database: sqliteConnection(file) }) })
  }
  return { instance, close: () => instance.destroy() }
}

export function openKnex(dialect: SqlDialect, file = ':memory:', extra: Partial<Knex.Config> = {}): Opened<Knex> {
  let instance: Knex
  if (dialect === 'postgres') {
    instance = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 10 }, ...extra })
  } else if (dialect === 'mysql') {
    instance = knex({ client: 'mysql2', connection: MYSQL_URL, pool: { min: 0, max: 10 }, ...extra })
  } else {
    instance = knex({
      client: 'better-sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
      pool: {
        afterCreate(connection: Database.Database, done: (error: Error | null, connection: unknown) => void) {
          connection.pragma('busy_timeout = 10000')
          done(null, connection)
        },
      },
      ...extra,
    })
  }
  return { instance, close: () => instance.destroy() }
}

export type DrizzleInstance = NodePgDatabase | MySql2Database | BetterSQLite3Database

export function openDrizzle(dialect: SqlDialect, file = ':memory:'): Opened<DrizzleInstance> {
  if (dialect === 'postgres') {
    const pool = newPool(10)
    return { instance: drizzlePg(pool), close: () => pool.end() }
  }
  if (dialect === 'mysql') {
    const pool = mysqlPromise.createPool({ uri: MYSQL_URL, connectionLimit: 10 })
    return { instance: drizzleMysql(pool), close: () => pool.end() }
  }
  const connection = sqliteConnection(file)
  return {
    instance: drizzleSqlite(connection),
    close: async () => {
      connection.close()
    },
  }
}

export type OrmName = 'Kysely' | 'Knex' | 'Drizzle'

/** An ORM's instance on `dialect`'s test database (SQLite: `file`), with Idem's adapter over it. */
export function openOrm(
  orm: OrmName,
  dialect: SqlDialect,
  file?: string,
): Opened<unknown> & { db: SqlDatabase<unknown>; join(tx: unknown): SqlDatabase<unknown> } {
  if (orm === 'Kysely') {
    const opened = openKysely(dialect, file)
    const join = (tx: unknown) => fromKysely(tx as typeof opened.instance) as SqlDatabase<unknown>
    return { ...opened, db: fromKysely(opened.instance) as SqlDatabase<unknown>, join }
  }
  if (orm === 'Knex') {
    const opened = openKnex(dialect, file)
    const join = (tx: unknown) => fromKnex(tx as typeof opened.instance) as SqlDatabase<unknown>
    return { ...opened, db: fromKnex(opened.instance) as SqlDatabase<unknown>, join }
  }
  const opened = openDrizzle(dialect, file)
  // biome-ignore lint/suspicious/noExplicitAny: the union of three Drizzle databases (and their transactions) matches one overload each
  const join = (tx: unknown) => fromDrizzle(tx as any) as SqlDatabase<unknown>
  // biome-ignore lint/suspicious/noExplicitAny: as above
  return { ...opened, db: fromDrizzle(opened.instance as any) as SqlDatabase<unknown>, join }
}

/** The driver rig for `dialect`, with `db` replaced by `orm`'s adapter. */
export async function ormRig(orm: OrmName, dialect: SqlDialect): Promise<TransactionRig> {
  const base = await driverRig(dialect)
  const opened = openOrm(orm, dialect, dialect === 'sqlite' ? sqliteFile(base) : undefined)
  return {
    ...base,
    db: opened.db,
    join: opened.join,
    async cleanup() {
      await opened.close()
      await base.cleanup()
    },
  }
}

/** What every ORM executor must do with values and placeholders, on `dialect`'s test database. */
export function describeExecutor(orm: OrmName, dialect: SqlDialect): void {
  describe(`${orm}'s executor on ${dialect}`, () => {
    let opened: ReturnType<typeof openOrm>
    beforeAll(() => {
      opened = openOrm(orm, dialect)
    })
    afterAll(() => opened?.close())
    const inTransaction = <R>(fn: (sql: SqlExecutor) => Promise<R>) => opened.db.transaction((_tx, sql) => fn(sql))

    it('passes bytes through unchanged and reads them back as bytes', async () => {
      const bytes = Buffer.from([0, 1, 0x3f, 0x24, 0xfe, 0xff])
      const query = dialect === 'postgres' ? 'SELECT $1::bytea AS b' : 'SELECT ? AS b'
      const { rows } = await inTransaction((sql) => sql.execute(query, [bytes]))
      expect(Buffer.isBuffer(rows[0]?.b)).toBe(true)
      expect(rows[0]?.b).toEqual(bytes)
    })

    if (dialect === 'postgres') {
      it('binds repeated and reordered $n, and leaves $n inside strings alone', async () => {
        const { rows } = await inTransaction((sql) =>
          sql.execute(
            `SELECT $2::text || $1::text || $2::text AS s, '$1' AS literal, "n$1" FROM (SELECT 7 AS "n$1") t`,
            ['a', 'b'],
          ),
        )
        expect(rows[0]).toEqual({ s: 'bab', literal: '$1', n$1: 7 })
      })

      it("keeps PostgreSQL's own ? operators and question marks in strings", async () => {
        const { rows } = await inTransaction((sql) =>
          sql.execute(`SELECT $1::jsonb ? 'a' AS has, $1::jsonb ?$2 AS adjacent, '??' AS q`, ['{"a": 1}', 'a']),
        )
        expect(rows[0]).toEqual({ has: true, adjacent: true, q: '??' })
      })
    }
  })
}

/** A function that throws `undefined` (some ORMs take it for an explicit rollback) on SQLite. */
export function describeUndefinedThrow(orm: OrmName): void {
  describe(`${orm}'s transactions`, () => {
    let rig: TransactionRig
    beforeAll(async () => {
      rig = await ormRig(orm, 'sqlite')
    })
    afterAll(() => rig?.cleanup())

    it('hands back a throw of undefined unchanged, with the write and the claim rolled back', async () => {
      const before = await rig.records()
      const outcome = await rig
        .idem()
        .transaction(rig.db, { key: 'undefined-1' }, async (_tx, ctx) => {
          await rig.addEffect(ctx.sql, 'undefined-1')
          throw undefined
        })
        .then(
          (value) => ({ resolved: value }),
          (error: unknown) => ({ rejected: error }),
        )
      expect(outcome).toEqual({ rejected: undefined })
      expect(await rig.effect('undefined-1')).toBe(0)
      expect(await rig.records()).toBe(before)
    })
  })
}
