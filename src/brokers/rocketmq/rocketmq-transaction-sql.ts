// The table in which a RocketMQ transaction's fate is decided, and its statements per dialect. One
// row per half message, keyed by the id Idem put on it (`idem-tx-id`): `committed`, written by the
// local transaction as its first statement, so it commits or rolls back with the business writes;
// or `rolled_back`, written by a checker once the transaction's deadline passed with no row. The
// primary key lets only one of the two exist: a checker's insert waits for a local transaction
// that holds the row, and a local transaction that comes after a checker's finds the row taken.
// Times are milliseconds since the epoch by the database's clock.

import { nowMs } from '../../sql/core/clock.js'
import { placeholder, type SqlDialect } from '../../sql/core/executor.js'
import { quote, tableName } from '../../sql/core/identifiers.js'

export const DEFAULT_TRANSACTIONS_TABLE = 'idem_rocketmq_transactions'

export const TransactionOutcome = {
  COMMITTED: 'committed',
  ROLLED_BACK: 'rolled_back',
} as const
export type TransactionOutcome = (typeof TransactionOutcome)[keyof typeof TransactionOutcome]

/**
 * The statements that create the table, each idempotent (IF NOT EXISTS). Run them in your
 * migrations, or call `ensureSchema`.
 *
 * - `id`: the half message's `idem-tx-id` property, unique per send.
 * - `message_key`: the message's Idem key, for whoever reads the table.
 * - `outcome`: `committed` or `rolled_back`; whichever row is there is what the broker is told.
 * - `decided_at`: when the row was written; rows older than the broker's last check-back can go
 *   (`sweep`).
 */
export function transactionsSchema(dialect: SqlDialect, table: string = DEFAULT_TRANSACTIONS_TABLE): string[] {
  const t = quotedTable(dialect, table)
  const base = tableName(table, 'The transactions table').at(-1) as string
  const index = quote(dialect, `${base}_decided_at`)
  switch (dialect) {
    case 'postgres':
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (
  id varchar(255) PRIMARY KEY,
  message_key varchar(255) NOT NULL,
  outcome varchar(16) NOT NULL,
  decided_at bigint NOT NULL
)`,
        `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (decided_at)`,
      ]
    case 'mysql':
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (
  id varchar(255) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
  message_key varchar(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  outcome varchar(16) NOT NULL,
  decided_at bigint NOT NULL,
  INDEX ${index} (decided_at)
) ENGINE=InnoDB`,
      ]
    case 'sqlite':
      return [
        `CREATE TABLE IF NOT EXISTS ${t} (
  id TEXT PRIMARY KEY,
  message_key TEXT NOT NULL,
  outcome TEXT NOT NULL,
  decided_at INTEGER NOT NULL
)`,
        `CREATE INDEX IF NOT EXISTS ${sqliteIndex(table)} ON ${quote(dialect, base)} (decided_at)`,
      ]
  }
}

export interface TransactionStatements {
  /** (id, message_key, outcome): insert, or nothing when the id has a row already. */
  decide: string
  /** (id): the row's outcome. */
  read: string
  /** (id): the row's outcome, read past any snapshot (a locking read where the database has one). */
  readLatest: string
  /** (olderThanMs): delete up to `limit` rows decided longer ago. */
  sweep(limit: number): string
}

const cache = new Map<string, TransactionStatements>()

export function transactionStatements(dialect: SqlDialect, table: string): TransactionStatements {
  const cacheKey = `${dialect}\u0000${table}`
  let statements = cache.get(cacheKey)
  if (statements === undefined) {
    statements = build(dialect, table)
    cache.set(cacheKey, statements)
  }
  return statements
}

function build(dialect: SqlDialect, table: string): TransactionStatements {
  const t = quotedTable(dialect, table)
  const now = nowMs(dialect)
  const p = (n: number) => placeholder(dialect, n)
  const decide =
    dialect === 'mysql'
      ? // Not INSERT IGNORE: it would also turn a too-long value into a warning.
        `INSERT INTO ${t} (id, message_key, outcome, decided_at) VALUES (?, ?, ?, ${now})
         ON DUPLICATE KEY UPDATE id = id`
      : `INSERT INTO ${t} (id, message_key, outcome, decided_at) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${now})
         ON CONFLICT (id) DO NOTHING`
  return {
    decide,
    read: `SELECT outcome FROM ${t} WHERE id = ${p(1)}`,
    // SQLite has no row locks: a writing transaction holds the database's write lock already.
    readLatest: `SELECT outcome FROM ${t} WHERE id = ${p(1)}${dialect === 'sqlite' ? '' : ' FOR UPDATE'}`,
    sweep: (limit) =>
      dialect === 'postgres'
        ? `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE decided_at < ${now} - $1 LIMIT ${Math.trunc(limit)})`
        : dialect === 'mysql'
          ? `DELETE FROM ${t} WHERE decided_at < ${now} - ? LIMIT ${Math.trunc(limit)}`
          : `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE decided_at < ${now} - ? LIMIT ${Math.trunc(limit)})`,
  }
}

function quotedTable(dialect: SqlDialect, table: string): string {
  return quote(dialect, tableName(table, 'The transactions table'))
}

/** SQLite wants the schema on the index's name, not on its table's. */
function sqliteIndex(table: string): string {
  const parts = tableName(table, 'The transactions table')
  const base = parts.at(-1) as string
  return quote('sqlite', [...parts.slice(0, -1), `${base}_decided_at`])
}
