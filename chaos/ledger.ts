// The ledger: the consumer's effect ("charge") is a row per execution, in a table with no unique
// constraint on the payment, so that the ledger never hides a double. Rows carry the run and the
// combination, so that runs and combinations share the table without mixing. run() modes and the
// control write it in the judge's PostgreSQL; transaction modes in the store's own database
// (PostgreSQL here, MariaDB in ledger-mysql.ts, SQLite in ledger-sqlite.ts), in Idem's transaction.

import pg from 'pg'
import type { LedgerRow } from './judge.js'
import { chargeOnMysql, type MysqlQueryable, mysqlJudgeLedger } from './ledger-mysql.js'
import { chargeOnSqlite, type SqliteRunnable, sqliteJudgeLedger } from './ledger-sqlite.js'
import type { StoreMode } from './worker-config.js'

export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>
}

export const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS chaos_ledger (
  run text NOT NULL,
  combo text NOT NULL,
  payment text NOT NULL,
  attempt integer NOT NULL,
  worker integer NOT NULL,
  charged_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS chaos_ledger_run ON chaos_ledger (run, combo)`

export interface Charge {
  run: string
  combo: string
  payment: string
  attempt: number
}

/** The effect: one row, whatever came before. */
export async function charge(db: Queryable, c: Charge): Promise<void> {
  await db.query('INSERT INTO chaos_ledger (run, combo, payment, attempt, worker) VALUES ($1, $2, $3, $4, $5)', [
    c.run,
    c.combo,
    c.payment,
    c.attempt,
    process.pid,
  ])
}

export async function ensureLedger(db: Queryable): Promise<void> {
  // Two statements in one simple query; concurrent first runs could race on IF NOT EXISTS, so
  // serialise them.
  await db.query(`SELECT pg_advisory_lock(hashtext('chaos_ledger'))`)
  try {
    await db.query(LEDGER_DDL)
  } finally {
    await db.query(`SELECT pg_advisory_unlock(hashtext('chaos_ledger'))`)
  }
}

export async function ledgerRows(db: Queryable, run: string, combo: string): Promise<LedgerRow[]> {
  const { rows } = await db.query(
    `SELECT payment, attempt, (extract(epoch FROM charged_at) * 1000)::float8 AS "chargedAt"
     FROM chaos_ledger WHERE run = $1 AND combo = $2`,
    [run, combo],
  )
  return rows as LedgerRow[]
}

/** Distinct payments charged so far: the run waits for it to reach the number published. */
export async function chargedCount(db: Queryable, run: string, combo: string): Promise<number> {
  const { rows } = await db.query(
    'SELECT count(DISTINCT payment)::int AS n FROM chaos_ledger WHERE run = $1 AND combo = $2',
    [run, combo],
  )
  return (rows[0] as { n: number }).n
}

/** The dialect of a transaction's handle, as Idem's adapter (`SqlDatabase.dialect`) names it. */
export type LedgerDialect = 'postgres' | 'mysql' | 'sqlite'

export interface ChargeInTransactionOptions {
  dialect: LedgerDialect
  /** The handle Idem's transaction mode gives the handler: a pg client, a mysql2 connection, a better-sqlite3 Database. */
  tx: unknown
  charge: Charge
}

/** The effect in transaction mode: the row commits (or rolls back) with Idem's record. */
export async function chargeInTransaction(o: ChargeInTransactionOptions): Promise<void> {
  switch (o.dialect) {
    case 'postgres':
      return charge(o.tx as Queryable, o.charge)
    case 'mysql':
      return chargeOnMysql(o.tx as MysqlQueryable, o.charge)
    case 'sqlite':
      return chargeOnSqlite(o.tx as SqliteRunnable, o.charge)
  }
}

/** What the judge reads from a ledger, wherever it lives. */
export interface JudgeLedger {
  /** Distinct payments charged so far. */
  chargedCount(run: string, combo: string): Promise<number>
  rows(run: string, combo: string): Promise<LedgerRow[]>
  end(): Promise<void>
}

export interface OpenJudgeLedgerOptions {
  /** The combination's store mode ('none' for the control). */
  store: StoreMode
  /** The store's server port (not its proxy's): transaction modes' ledger is in the store's database. */
  storeServerPort: number | undefined
  /** The judge's database, for run() modes and the control. */
  ledgerUrl: string
  /** transaction-sqlite: the database file the workers share. */
  sqliteFile: string
}

/**
 * The ledger the judge reads, with its table created: in transaction modes the store's own
 * database, reached directly (never through the proxy: a fault there would be the judge's);
 * otherwise the judge's PostgreSQL.
 */
export async function openJudgeLedger(o: OpenJudgeLedgerOptions): Promise<JudgeLedger> {
  if (o.store === 'transaction-sqlite') return sqliteJudgeLedger(o.sqliteFile)
  const port = o.storeServerPort
  if (o.store === 'transaction-mysql') {
    if (port === undefined) throw new Error('transaction-mysql needs the MariaDB server')
    return mysqlJudgeLedger(port)
  }
  const pool =
    o.store === 'transaction-postgres' && port !== undefined
      ? new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'chaos', max: 2 })
      : new pg.Pool({ connectionString: o.ledgerUrl, max: 2 })
  pool.on('error', () => {})
  const setup = await pool.connect()
  try {
    await ensureLedger(setup)
  } finally {
    setup.release()
  }
  return {
    chargedCount: (run, combo) => chargedCount(pool, run, combo),
    rows: (run, combo) => ledgerRows(pool, run, combo),
    end: () => pool.end(),
  }
}

/** Delete a run's rows from the judge's ledger (transaction modes' went with the private servers). */
export async function forgetRun(ledgerUrl: string, run: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: ledgerUrl, max: 1 })
  try {
    await pool.query('DELETE FROM chaos_ledger WHERE run = $1', [run])
  } finally {
    await pool.end()
  }
}
