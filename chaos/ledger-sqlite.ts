// The ledger of transaction mode on SQLite: the same table as on PostgreSQL (one row per
// execution, no unique constraint), in the database file the workers share, so that the charge
// commits in the transaction that writes Idem's record.

import Database from 'better-sqlite3'
import type { LedgerRow } from './judge.js'
import type { Charge, JudgeLedger } from './ledger.js'

/** The part of a better-sqlite3 Database the charge uses: the handle transaction mode hands over. */
export interface SqliteRunnable {
  prepare(sql: string): { run(...params: unknown[]): unknown }
}

// charged_at: milliseconds since the epoch by the machine's clock, which every process that
// opens the file shares (SQLite's own 'now', not a worker's Date.now).
const SQLITE_LEDGER_DDL = `CREATE TABLE IF NOT EXISTS chaos_ledger (
  run text NOT NULL,
  combo text NOT NULL,
  payment text NOT NULL,
  attempt integer NOT NULL,
  worker integer NOT NULL,
  charged_at real NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400000.0)
);
CREATE INDEX IF NOT EXISTS chaos_ledger_run ON chaos_ledger (run, combo)`

/** The effect on SQLite: one row, in the caller's transaction (synchronous, as it must be there). */
export function chargeOnSqlite(db: SqliteRunnable, c: Charge): void {
  db.prepare('INSERT INTO chaos_ledger (run, combo, payment, attempt, worker) VALUES (?, ?, ?, ?, ?)').run(
    c.run,
    c.combo,
    c.payment,
    c.attempt,
    process.pid,
  )
}

/**
 * The judge's view of the ledger in the shared SQLite file (created here, in WAL mode, before the
 * workers start). The run's process also runs the proxies, so it must not wait for a lock
 * synchronously for long: WAL readers take none, and the short busy_timeout covers the
 * wal-index recovery after a writer was SIGKILLed; a read that still fails is retried.
 */
export function sqliteJudgeLedger(file: string): JudgeLedger {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('busy_timeout = 200')
  db.exec(SQLITE_LEDGER_DDL)
  const count = db.prepare('SELECT count(DISTINCT payment) AS n FROM chaos_ledger WHERE run = ? AND combo = ?')
  const select = db.prepare('SELECT payment, attempt, charged_at FROM chaos_ledger WHERE run = ? AND combo = ?')
  const retried = async <T>(read: () => T): Promise<T> => {
    for (let i = 0; ; i++) {
      try {
        return read()
      } catch (error) {
        if (i >= 50) throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }
  return {
    chargedCount: (run, combo) => retried(() => (count.get(run, combo) as { n: number }).n),
    rows: (run, combo) =>
      retried(() =>
        (select.all(run, combo) as { payment: string; attempt: number; charged_at: number }[]).map(
          (r): LedgerRow => ({ payment: r.payment, attempt: r.attempt, chargedAt: r.charged_at }),
        ),
      ),
    async end() {
      db.close()
    },
  }
}
