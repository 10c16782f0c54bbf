// The ledger: the consumer's effect ("charge") is a row per execution, in a PostgreSQL table with
// no unique constraint on the payment, so that the ledger never hides a double. Rows carry the
// run and the combination, so that runs and combinations share the table without mixing.

import pg from 'pg'
import type { LedgerRow } from './judge.js'

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
  const { rows } = await db.query('SELECT payment, attempt FROM chaos_ledger WHERE run = $1 AND combo = $2', [
    run,
    combo,
  ])
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

/** Delete a run's rows from the judge's ledger (transaction mode's went with the private server). */
export async function forgetRun(ledgerUrl: string, run: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: ledgerUrl, max: 1 })
  try {
    await pool.query('DELETE FROM chaos_ledger WHERE run = $1', [run])
  } finally {
    await pool.end()
  }
}
