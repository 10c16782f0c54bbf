// The outbox table per dialect: its DDL (for users' migrations) and the names its statements use.
// Times are bigint milliseconds since the epoch by the database's clock, so that several relay
// hosts agree on when a lease or a backoff ends without trusting their own clocks.

import type { SqlDialect } from '../sql/core/executor.js'
import { quote, tableName } from '../sql/core/identifiers.js'

export const DEFAULT_OUTBOX_TABLE = 'idem_outbox'

export interface OutboxNames {
  /** The table, quoted and schema-qualified when it was given so. */
  table: string
  /** Index names: `<table>_pending` (claimable rows in order) and `<table>_sent` (the retention sweep). */
  pendingIndex: string
  sentIndex: string
  idIndex: string
  /** The table's own name, quoted, without its schema (SQLite's CREATE INDEX … ON wants it so). */
  bareTable: string
}

/** The quoted names for `table` (`'idem_outbox'`, `'app.idem_outbox'`) in `dialect`. */
export function outboxNames(dialect: SqlDialect, table: string): OutboxNames {
  const parts = tableName(table, 'The outbox table')
  const base = parts[parts.length - 1] as string
  const schema = parts.length === 2 ? parts.slice(0, 1) : []
  // PostgreSQL puts an index in its table's schema; SQLite wants the schema on the index name.
  const index = (suffix: string) =>
    quote(dialect, dialect === 'sqlite' ? [...schema, `${base}_${suffix}`] : `${base}_${suffix}`)
  return {
    table: quote(dialect, parts),
    pendingIndex: index('pending'),
    sentIndex: index('sent'),
    idIndex: index('id'),
    bareTable: quote(dialect, base),
  }
}

/**
 * The statements that create the outbox table and its indexes, each idempotent (IF NOT EXISTS).
 * Run them in your migrations, or call `outbox.ensureSchema(sql)`.
 *
 * - `seq` orders the rows (the order they were added, give or take transactions that commit out
 *   of order); `id` is the message id consumers see, unique, so a second add of one id is a no-op.
 * - `status`: `pending` until a relay has the broker's confirmation, then `sent`; `failed` after
 *   `maxAttempts` failed publishes, with `last_error` kept.
 * - `available_at`: when the row may next be claimed. A relay's claim pushes it to the end of its
 *   lease; a failed publish pushes it to the end of the backoff. A crashed relay's rows come back
 *   when its lease ends.
 * - `attempts` counts claims, so a row that crashes every relay that takes it still ends `failed`.
 */
export function outboxSchema(dialect: SqlDialect, table: string = DEFAULT_OUTBOX_TABLE): string[] {
  const n = outboxNames(dialect, table)
  switch (dialect) {
    case 'postgres':
      return [
        `CREATE TABLE IF NOT EXISTS ${n.table} (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id varchar(255) NOT NULL,
  destination text,
  payload text NOT NULL,
  headers text,
  status varchar(8) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  available_at bigint NOT NULL,
  claim_token varchar(36),
  created_at bigint NOT NULL,
  sent_at bigint,
  last_error text
)`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${n.idIndex} ON ${n.table} (id)`,
        // Partial indexes stay as small as the backlog however many sent rows are retained.
        `CREATE INDEX IF NOT EXISTS ${n.pendingIndex} ON ${n.table} (seq) WHERE status = 'pending'`,
        `CREATE INDEX IF NOT EXISTS ${n.sentIndex} ON ${n.table} (sent_at) WHERE status = 'sent'`,
      ]
    case 'mysql':
      // Indexes inside CREATE TABLE: MySQL 8 has no CREATE INDEX IF NOT EXISTS (MariaDB has).
      return [
        `CREATE TABLE IF NOT EXISTS ${n.table} (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  destination TEXT,
  payload LONGTEXT NOT NULL,
  headers TEXT,
  status VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'pending',
  attempts INT NOT NULL DEFAULT 0,
  available_at BIGINT NOT NULL,
  claim_token CHAR(36) CHARACTER SET ascii,
  created_at BIGINT NOT NULL,
  sent_at BIGINT,
  last_error TEXT,
  UNIQUE KEY ${n.idIndex} (id),
  KEY ${n.pendingIndex} (status, seq),
  KEY ${n.sentIndex} (status, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      ]
    case 'sqlite':
      return [
        // AUTOINCREMENT: a seq is never reused, even after the sweep deleted the newest rows.
        `CREATE TABLE IF NOT EXISTS ${n.table} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  destination TEXT,
  payload TEXT NOT NULL,
  headers TEXT,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  claim_token TEXT,
  created_at INTEGER NOT NULL,
  sent_at INTEGER,
  last_error TEXT
)`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${n.idIndex} ON ${n.bareTable} (id)`,
        `CREATE INDEX IF NOT EXISTS ${n.pendingIndex} ON ${n.bareTable} (seq) WHERE status = 'pending'`,
        `CREATE INDEX IF NOT EXISTS ${n.sentIndex} ON ${n.bareTable} (sent_at) WHERE status = 'sent'`,
      ]
  }
}
