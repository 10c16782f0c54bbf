// The ledger of transaction mode on MariaDB: the same table as on PostgreSQL (one row per
// execution, no unique constraint), in the private MariaDB's `chaos` database, so that the charge
// commits in the transaction that writes Idem's record.

import mysql from 'mysql2/promise'
import type { LedgerRow } from './judge.js'
import type { Charge, JudgeLedger } from './ledger.js'

/** The part of a mysql2 connection the charge uses: the `PoolConnection` transaction mode hands over. */
export interface MysqlQueryable {
  query(sql: string, values?: unknown[]): Promise<unknown>
}

const MYSQL_LEDGER_DDL = `CREATE TABLE IF NOT EXISTS chaos_ledger (
  run varchar(64) NOT NULL,
  combo varchar(191) NOT NULL,
  payment varchar(64) NOT NULL,
  attempt int NOT NULL,
  worker int NOT NULL,
  charged_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  INDEX chaos_ledger_run (run, combo)
) ENGINE=InnoDB`

/** The effect on MariaDB: one row, in the caller's transaction. */
export async function chargeOnMysql(connection: MysqlQueryable, c: Charge): Promise<void> {
  await connection.query('INSERT INTO chaos_ledger (run, combo, payment, attempt, worker) VALUES (?, ?, ?, ?, ?)', [
    c.run,
    c.combo,
    c.payment,
    c.attempt,
    process.pid,
  ])
}

/**
 * The judge's view of the ledger on MariaDB, reached on the server's own port (never through the
 * proxy). A connection of its own per query: the server restarts under the run, and a connection
 * from before a restart is dead.
 */
export async function mysqlJudgeLedger(port: number): Promise<JudgeLedger> {
  const query = async (sql: string, values: unknown[] = []) => {
    const connection = await mysql.createConnection({
      host: '127.0.0.1',
      port,
      user: 'root',
      database: 'chaos',
      connectTimeout: 3000,
    })
    try {
      const [rows] = await connection.query(sql, values)
      return rows as Record<string, unknown>[]
    } finally {
      await connection.end().catch(() => {})
    }
  }
  await query(MYSQL_LEDGER_DDL)
  return {
    async chargedCount(run, combo) {
      const rows = await query('SELECT count(DISTINCT payment) AS n FROM chaos_ledger WHERE run = ? AND combo = ?', [
        run,
        combo,
      ])
      return Number(rows[0]?.n ?? 0)
    },
    async rows(run, combo): Promise<LedgerRow[]> {
      const rows = await query(
        'SELECT payment, attempt, UNIX_TIMESTAMP(charged_at) * 1000 AS charged_at FROM chaos_ledger WHERE run = ? AND combo = ?',
        [run, combo],
      )
      return rows.map((r) => ({
        payment: String(r.payment),
        attempt: Number(r.attempt),
        chargedAt: Number(r.charged_at),
      }))
    },
    async end() {},
  }
}
