// One rig per database for the transaction-mode suites: a SQL store on an isolated table, a
// driver adapter over the same database, and a business table `effects (id, n)` that a
// function adds to inside the transaction, so tests can count effects.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { Idempotency } from '../../../src/core/idempotency.js'
import type { IdempotencyOptions } from '../../../src/core/options.js'
import { fromBetterSqlite3 } from '../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../../../src/sql/core/executor.js'
import type { InboxStore } from '../../../src/sql/core/inbox.js'
import { fromMysql2 } from '../../../src/sql/mysql2/mysql2-database.js'
import { fromPg } from '../../../src/sql/pg/pg-database.js'
import { MysqlStore } from '../../../src/stores/mysql/mysql-store.js'
import { PostgresStore } from '../../../src/stores/postgres/postgres-store.js'
import { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js'
import { isolatedName } from '../../services.js'
import { createTestPool, dropSchema as dropMysqlSchema } from '../stores/mysql/mysql.test-helper.js'
import { dropSchema as dropPgSchema, newPool } from '../stores/postgres/postgres.test-helper.js'

export interface TransactionRig<Tx = unknown> {
  dialect: SqlDialect
  store: InboxStore
  db: SqlDatabase<Tx>
  /** The adapter on the transaction `tx` a function was given (Idem joins it under a savepoint). */
  join(tx: Tx): SqlDatabase<Tx>
  /** The effects table's name, quoted for the dialect. */
  effects: string
  idem(options?: Omit<IdempotencyOptions, 'store'>): Idempotency
  /** The business write: add `n` to effect `id`, on the transaction `sql` runs in. */
  addEffect(sql: SqlExecutor, id: string, n?: number): Promise<void>
  /** The committed total of effect `id` (0 when absent), read outside any transaction. */
  effect(id: string): Promise<number>
  /** The committed number of records in the store's table. */
  records(): Promise<number>
  cleanup(): Promise<void>
}

export async function postgresRig(): Promise<TransactionRig<pg.PoolClient>> {
  const pool = newPool(30)
  const schema = isolatedName('idem_tx')
  const store = new PostgresStore({ client: pool, schema })
  await store.ensureSchema()
  const effects = `"${schema}"."effects"`
  await pool.query(`CREATE TABLE ${effects} (id text PRIMARY KEY, n integer NOT NULL)`)
  return {
    dialect: 'postgres',
    store,
    db: fromPg<pg.PoolClient>(pool),
    join: (tx) => fromPg(tx),
    effects,
    idem: (options) => new Idempotency({ store, ...options }),
    async addEffect(sql, id, n = 1) {
      await sql.execute(
        `INSERT INTO ${effects} AS e (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = e.n + EXCLUDED.n`,
        [id, n],
      )
    },
    async effect(id) {
      const { rows } = await pool.query(`SELECT n FROM ${effects} WHERE id = $1`, [id])
      return rows.length === 0 ? 0 : Number(rows[0].n)
    },
    async records() {
      const { rows } = await pool.query(`SELECT count(*)::int AS c FROM ${store.names.qualifiedTable}`)
      return Number(rows[0].c)
    },
    async cleanup() {
      await dropPgSchema(pool, schema)
      await pool.end()
    },
  }
}

export async function mysqlRig(): Promise<TransactionRig<mysql.PoolConnection>> {
  const pool = createTestPool(30)
  const table = isolatedName('idem_tx')
  const store = new MysqlStore({ client: pool, table })
  await store.ensureSchema()
  const effects = `\`${table}_effects\``
  await pool.query(`CREATE TABLE ${effects} (id VARCHAR(255) PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB`)
  return {
    dialect: 'mysql',
    store,
    db: fromMysql2<mysql.PoolConnection>(pool),
    join: (tx) => fromMysql2(tx),
    effects,
    idem: (options) => new Idempotency({ store, ...options }),
    async addEffect(sql, id, n = 1) {
      await sql.execute(`INSERT INTO ${effects} (id, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + ?`, [id, n, n])
    },
    async effect(id) {
      const [rows] = (await pool.query(`SELECT n FROM ${effects} WHERE id = ?`, [id])) as unknown as [{ n: number }[]]
      return rows.length === 0 ? 0 : Number(rows[0]?.n)
    },
    async records() {
      const [rows] = (await pool.query(`SELECT count(*) AS c FROM \`${table}\``)) as unknown as [{ c: number }[]]
      return Number(rows[0]?.c)
    },
    async cleanup() {
      await store.close()
      await pool.query(`DROP TABLE IF EXISTS ${effects}`)
      await dropMysqlSchema(pool, table)
      await pool.end()
    },
  }
}

/**
 * SQLite on a temporary file, the store and the transactions on one connection, as in one
 * process they must be (better-sqlite3 waits for locks synchronously).
 */
export async function sqliteRig(): Promise<TransactionRig<Database.Database>> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-tx-'))
  const file = join(dir, 'tx.db')
  const connection = new Database(file)
  connection.pragma('busy_timeout = 10000')
  const store = new SqliteStore({ client: connection })
  store.ensureSchema()
  connection.exec('CREATE TABLE effects (id TEXT PRIMARY KEY, n INTEGER NOT NULL)')
  return {
    dialect: 'sqlite',
    store,
    db: fromBetterSqlite3(connection),
    join: (tx) => fromBetterSqlite3(tx),
    effects: 'effects',
    idem: (options) => new Idempotency({ store, ...options }),
    async addEffect(sql, id, n = 1) {
      await sql.execute('INSERT INTO effects (id, n) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET n = n + excluded.n', [
        id,
        n,
      ])
    },
    async effect(id) {
      const row = store.db.prepare('SELECT n FROM effects WHERE id = ?').get(id) as { n: number } | undefined
      return row === undefined ? 0 : Number(row.n)
    },
    async records() {
      return Number((store.db.prepare(`SELECT count(*) AS c FROM ${store.table}`).get() as { c: number }).c)
    },
    async cleanup() {
      await store.close()
      connection.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
