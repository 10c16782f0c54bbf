// The databases of bench/transaction.ts: on each, one business transaction (extend a
// subscription, record its payment) run bare with the driver, through idem.transaction, and as
// Idem's own statements written by hand, all on the same connection pool (or SQLite connection).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { Idempotency } from '../../src/core/idempotency.js'
import { betterSqlite3Executor, fromBetterSqlite3 } from '../../src/sql/better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase, SqlExecutor, SqlResult, TransactionEdges } from '../../src/sql/core/executor.js'
import type { InboxStore } from '../../src/sql/core/inbox.js'
import { fromMysql2, mysql2Executor } from '../../src/sql/mysql2/mysql2-database.js'
import { fromPg, pgExecutor } from '../../src/sql/pg/pg-database.js'
import { pgLiteral } from '../../src/sql/pg/pg-literal.js'
import { mysqlDropSchema } from '../../src/stores/mysql/mysql-schema.js'
import { MysqlStore } from '../../src/stores/mysql/mysql-store.js'
import { PostgresStore } from '../../src/stores/postgres/postgres-store.js'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js'
import { SERVERS } from '../stores/run.js'
import { versionOf } from '../stores/servers.js'

export const SUBSCRIPTIONS = 1000
export const SCOPE = 'bench'
export const LEASE_MS = 30_000
export const TTL_MS = 86_400_000
const name = `idem_bench_tx_${process.pid}`

/** One connection, held for a whole transaction, for the statement-by-statement profile. */
export interface Session {
  sql: SqlExecutor
  begin(): Promise<unknown>
  commit(): Promise<unknown>
  /** Statements without parameters in one round trip (several at once on PostgreSQL only). */
  script(text: string): Promise<unknown>
  /** Fresh edges of a transaction not begun yet on this connection, as the pool adapters give them. */
  edges(): TransactionEdges
  release(): void
}

/** TransactionEdges over a held connection: what fromPg(pool) and fromMysql2(pool) hand the inbox. */
function edgesOn(raw: SqlExecutor, multi?: (text: string) => Promise<SqlResult[]>): TransactionEdges {
  let pending = true
  return {
    raw,
    get pending() {
      return pending
    },
    begun: () => {
      pending = false
    },
    committed: () => {},
    ...(multi === undefined ? {} : { multi, literal: pgLiteral }),
  }
}

/** What a database gives the benchmark: the business statements, run either way. */
export interface Target {
  label: string
  /** Server, driver and settings the figures come from. */
  line: string
  store: InboxStore
  db: SqlDatabase<unknown>
  /** The business transaction with the driver alone: BEGIN, UPDATE, INSERT, COMMIT. */
  bare(subscription: number): Promise<void>
  /** BEGIN and COMMIT with nothing between (the transaction's own cost). */
  empty(): Promise<void>
  /** The business statements on `sql`, inside a transaction someone else opened. */
  business(sql: SqlExecutor, subscription: number): Promise<void>
  session(): Promise<Session>
  close(): Promise<void>
}

export async function postgresTarget(): Promise<Target> {
  const pool = new pg.Pool({ connectionString: SERVERS.pgUrl, max: 2 })
  pool.on('error', () => {})
  await pool.query(`CREATE SCHEMA "${name}"`)
  const subs = `"${name}".subscriptions`
  const payments = `"${name}".payments`
  await pool.query(`CREATE TABLE ${subs} (id int PRIMARY KEY, expires_at timestamptz NOT NULL)`)
  await pool.query(`INSERT INTO ${subs} SELECT g, now() FROM generate_series(1, ${SUBSCRIPTIONS}) g`)
  await pool.query(
    `CREATE TABLE ${payments} (id bigserial PRIMARY KEY, subscription_id int NOT NULL, amount int NOT NULL, paid_at timestamptz NOT NULL DEFAULT now())`,
  )
  const store = new PostgresStore({ client: pool, schema: name })
  await store.ensureSchema()
  const extend = `UPDATE ${subs} SET expires_at = expires_at + interval '30 days' WHERE id = $1`
  const pay = `INSERT INTO ${payments} (subscription_id, amount) VALUES ($1, 999)`
  const { rows } = await pool.query('SHOW server_version')
  return {
    label: 'PostgreSQL',
    line: `postgres: PostgreSQL ${rows[0].server_version} on 127.0.0.1, pg ${versionOf('pg')}, one pool of 2 shared by every case`,
    store,
    db: fromPg(pool) as SqlDatabase<unknown>,
    async bare(subscription) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query(extend, [subscription])
        await client.query(pay, [subscription])
        await client.query('COMMIT')
      } finally {
        client.release()
      }
    },
    async empty() {
      const client = await pool.connect()
      await client.query('BEGIN')
      await client.query('COMMIT')
      client.release()
    },
    async business(sql, subscription) {
      await sql.execute(extend, [subscription])
      await sql.execute(pay, [subscription])
    },
    async session() {
      const client = await pool.connect()
      return {
        sql: pgExecutor(client),
        begin: () => client.query('BEGIN'),
        commit: () => client.query('COMMIT'),
        script: (text) => client.query(text),
        edges: () =>
          edgesOn(pgExecutor(client), async (text) => {
            const results = (await client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[]
            return (Array.isArray(results) ? results : [results]).map((r) => ({
              rows: r.rows ?? [],
              affectedRows: r.rowCount ?? 0,
            }))
          }),
        release: () => client.release(),
      }
    },
    async close() {
      await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      await pool.end()
    },
  }
}

export async function mysqlTarget(): Promise<Target> {
  const pool = mysql.createPool({ uri: SERVERS.mysqlUrl, connectionLimit: 2 })
  const subs = `\`${name}_subs\``
  const payments = `\`${name}_payments\``
  await pool.query(`CREATE TABLE ${subs} (id INT PRIMARY KEY, expires_at DATETIME(3) NOT NULL) ENGINE=InnoDB`)
  const values = Array.from({ length: SUBSCRIPTIONS }, (_, i) => `(${i + 1}, NOW(3))`).join(',')
  await pool.query(`INSERT INTO ${subs} VALUES ${values}`)
  await pool.query(
    `CREATE TABLE ${payments} (id BIGINT AUTO_INCREMENT PRIMARY KEY, subscription_id INT NOT NULL, amount INT NOT NULL, paid_at DATETIME(3) NOT NULL DEFAULT NOW(3)) ENGINE=InnoDB`,
  )
  const store = new MysqlStore({ client: pool, table: name })
  await store.ensureSchema()
  const extend = `UPDATE ${subs} SET expires_at = expires_at + INTERVAL 30 DAY WHERE id = ?`
  const pay = `INSERT INTO ${payments} (subscription_id, amount) VALUES (?, 999)`
  const [version] = (await pool.query('SELECT VERSION() AS v')) as unknown as [{ v: string }[]]
  return {
    label: 'MariaDB',
    line: `mariadb: ${version[0]?.v} on 127.0.0.1, mysql2 ${versionOf('mysql2')}, one pool of 2 shared by every case`,
    store,
    db: fromMysql2(pool) as SqlDatabase<unknown>,
    async bare(subscription) {
      const connection = await pool.getConnection()
      try {
        await connection.beginTransaction()
        await connection.query(extend, [subscription])
        await connection.query(pay, [subscription])
        await connection.commit()
      } finally {
        connection.release()
      }
    },
    async empty() {
      const connection = await pool.getConnection()
      await connection.beginTransaction()
      await connection.commit()
      connection.release()
    },
    async business(sql, subscription) {
      await sql.execute(extend, [subscription])
      await sql.execute(pay, [subscription])
    },
    async session() {
      const connection = await pool.getConnection()
      return {
        sql: mysql2Executor(connection),
        begin: () => connection.beginTransaction(),
        commit: () => connection.commit(),
        script: (text) => connection.query(text),
        edges: () => edgesOn(mysql2Executor(connection)),
        release: () => connection.release(),
      }
    },
    async close() {
      await store.close()
      await pool.query(`DROP TABLE IF EXISTS ${subs}, ${payments}`)
      for (const statement of mysqlDropSchema({ table: name })) await pool.query(statement)
      await pool.end()
    },
  }
}

/** A file in a temp dir; the store and every transaction on one connection, as in one process they must be. */
export async function sqliteTarget(): Promise<Target & { connection: Database.Database }> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-tx-'))
  const db = new Database(join(dir, 'bench.db'))
  const store = new SqliteStore({ client: db })
  store.ensureSchema()
  db.exec('CREATE TABLE subscriptions (id INTEGER PRIMARY KEY, expires_at INTEGER NOT NULL)')
  db.exec(
    'CREATE TABLE payments (id INTEGER PRIMARY KEY, subscription_id INTEGER NOT NULL, amount INTEGER NOT NULL, paid_at INTEGER NOT NULL)',
  )
  const seed = db.prepare('INSERT INTO subscriptions VALUES (?, ?)')
  for (let i = 1; i <= SUBSCRIPTIONS; i++) seed.run(i, Date.now())
  const extendSql = 'UPDATE subscriptions SET expires_at = expires_at + 2592000000 WHERE id = ?'
  const paySql = 'INSERT INTO payments (subscription_id, amount, paid_at) VALUES (?, 999, ?)'
  const extend = db.prepare(extendSql)
  const pay = db.prepare(paySql)
  const pragmas = ['journal_mode', 'synchronous', 'busy_timeout']
    .map((p) => `${p}=${String(db.pragma(p, { simple: true }))}`)
    .join(' ')
  const sqliteVersion = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v
  return {
    label: 'SQLite',
    connection: db,
    line: `sqlite: better-sqlite3 ${versionOf('better-sqlite3')}, SQLite ${sqliteVersion}, a file in a temp dir, ${pragmas}, one connection for every case`,
    store,
    db: fromBetterSqlite3(db) as SqlDatabase<unknown>,
    async bare(subscription) {
      db.exec('BEGIN IMMEDIATE')
      extend.run(subscription)
      pay.run(subscription, Date.now())
      db.exec('COMMIT')
    },
    async empty() {
      db.exec('BEGIN IMMEDIATE')
      db.exec('COMMIT')
    },
    async business(sql, subscription) {
      await sql.execute(extendSql, [subscription])
      await sql.execute(paySql, [subscription, Date.now()])
    },
    async session() {
      return {
        sql: betterSqlite3Executor(db),
        begin: async () => db.exec('BEGIN IMMEDIATE'),
        commit: async () => db.exec('COMMIT'),
        script: async (text) => db.exec(text),
        edges: () => edgesOn(betterSqlite3Executor(db)),
        release: () => {},
      }
    },
    async close() {
      await store.close()
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The result every transaction returns (and a duplicate replays). */
export const resultOf = (subscription: number) => ({ subscription, extendedBy: '30 days', paid: 999 })

export const idemOn = (target: Target) => new Idempotency({ store: target.store, scope: SCOPE })
