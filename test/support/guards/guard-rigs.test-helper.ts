// One rig per database for the guard suites: an autocommit executor for setup and checks, Idem's
// transaction adapter over the same database, and tables of the test file's own (an isolated
// PostgreSQL schema, a MariaDB name prefix, a temporary SQLite file).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import mysql from 'mysql2/promise'
import { Idempotency } from '../../../src/core/idempotency.js'
import { betterSqlite3Executor, fromBetterSqlite3 } from '../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../../../src/sql/core/executor.js'
import { fromMysql2, type Mysql2ConnectionLike, mysql2Executor } from '../../../src/sql/mysql2/mysql2-database.js'
import { fromPg, pgExecutor } from '../../../src/sql/pg/pg-database.js'
import { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'
import { PostgresStore } from '../../../src/stores/postgres/postgres-store.js'
import { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js'
import { isolatedName, requireService, SERVICES } from '../../services.js'
import { createTestPool, dropSchema as dropMysqlStore, MYSQL_URL } from '../stores/mysql/mysql.test-helper.js'
import { dropSchema as dropPgSchema, newPool } from '../stores/postgres/postgres.test-helper.js'

export interface GuardRig {
  dialect: SqlDialect
  /** Statements outside any transaction (autocommit), for setup and for reading committed rows. */
  sql: SqlExecutor
  /** Idem's adapter over the same database: each transaction on a connection of its own (not SQLite). */
  db: SqlDatabase<unknown>
  /** True when the rig's transactions run at the same time; SQLite's queue on one connection. */
  parallel: boolean
  /** The name to give a guard for table `base` of this rig (qualified where the rig can). */
  table(base: string): string
  /** Create table `base` with the given column definitions (portable SQL types only). */
  createTable(base: string, columns: string): Promise<void>
  /** An Idempotency whose SQL store keeps its records in the same database. */
  idem(): Promise<Idempotency>
  cleanup(): Promise<void>
}

export async function postgresRig(): Promise<GuardRig> {
  const pool = newPool(16)
  const schema = isolatedName('idem_guard')
  await pool.query(`CREATE SCHEMA "${schema}"`)
  let store: PostgresStore | undefined
  return {
    dialect: 'postgres',
    sql: pgExecutor(pool),
    db: fromPg(pool),
    parallel: true,
    table: (base) => `${schema}.${base}`,
    async createTable(base, columns) {
      await pool.query(`CREATE TABLE "${schema}"."${base}" (${columns})`)
    },
    async idem() {
      store ??= new PostgresStore({ client: pool, schema })
      await store.ensureSchema()
      return new Idempotency({ store })
    },
    async cleanup() {
      await dropPgSchema(pool, schema)
      await pool.end()
    },
  }
}

/** `flags` as mysql2 takes them: `['-FOUND_ROWS']` makes affected rows count changed rows, not matched ones. */
export async function mysqlRig(options: { flags?: string[] } = {}): Promise<GuardRig> {
  const pool =
    options.flags === undefined
      ? createTestPool(16)
      : mysql.createPool({ uri: MYSQL_URL, connectionLimit: 16, flags: options.flags })
  const prefix = isolatedName('idem_guard')
  const [[{ db: database }]] = (await pool.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]]
  const tables: string[] = []
  let store: MysqlStore | undefined
  return {
    dialect: 'mysql',
    sql: mysql2Executor(pool as unknown as Mysql2ConnectionLike),
    db: fromMysql2(pool),
    parallel: true,
    table: (base) => `${database}.${prefix}_${base}`,
    async createTable(base, columns) {
      tables.push(`${prefix}_${base}`)
      await pool.query(`CREATE TABLE \`${prefix}_${base}\` (${columns}) ENGINE=InnoDB`)
    },
    async idem() {
      store ??= new MysqlStore({ client: pool, table: `${prefix}_idem` })
      await store.ensureSchema()
      return new Idempotency({ store })
    },
    async cleanup() {
      for (const table of tables) await pool.query(`DROP TABLE IF EXISTS \`${table}\``)
      if (store !== undefined) {
        await store.close()
        await dropMysqlStore(pool, `${prefix}_idem`)
      }
      await pool.end()
    },
  }
}

export async function sqliteRig(): Promise<GuardRig> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-guard-'))
  const file = join(dir, 'guards.db')
  const connection = new Database(file)
  connection.pragma('busy_timeout = 10000')
  let store: SqliteStore | undefined
  return {
    dialect: 'sqlite',
    sql: betterSqlite3Executor(connection),
    db: fromBetterSqlite3(connection),
    parallel: false,
    table: (base) => base,
    async createTable(base, columns) {
      connection.exec(`CREATE TABLE "${base}" (${columns})`)
    },
    async idem() {
      store ??= new SqliteStore({ client: file })
      store.ensureSchema()
      return new Idempotency({ store })
    },
    async cleanup() {
      await store?.close()
      connection.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A promise per party that resolves once all `parties` have arrived: makes racers really overlap. */
export function barrier(parties: number): () => Promise<void> {
  let arrived = 0
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return () => {
    if (++arrived === parties) open()
    return opened
  }
}

/**
 * Run a guard suite on every database: SQLite always, PostgreSQL and MariaDB when their server is
 * up (MariaDB also without FOUND_ROWS, where affected rows count changed rows, not matched ones).
 */
export async function onEachDatabase(suite: (name: string, makeRig: () => Promise<GuardRig>) => void): Promise<void> {
  suite('SQLite (better-sqlite3)', sqliteRig)
  if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) suite('PostgreSQL (pg)', postgresRig)
  if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
    suite('MariaDB (mysql2)', () => mysqlRig())
    suite('MariaDB (mysql2, without FOUND_ROWS)', () => mysqlRig({ flags: ['-FOUND_ROWS'] }))
  }
}
