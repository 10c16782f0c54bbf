// The database's clock in whole milliseconds since the epoch, per dialect: stores, transaction mode
// and the outbox compare times on the server, so that hosts never need to agree on their clocks.

import type { SqlDialect } from './executor.js'

/** Read by PostgreSQL's `clock_timestamp()`, not `now()`: `now()` is frozen at the start of the transaction. */
export const POSTGRES_NOW_MS = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint'
/** UTC_TIMESTAMP, so that the session's time zone (and its DST jumps) cannot shift it; constant within one statement. */
export const MYSQL_NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)"
/** SQLite's clock is this machine's (the database is embedded). */
export const SQLITE_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

/** The database's clock in whole milliseconds since the epoch, as an SQL expression of `dialect`. */
export function nowMs(dialect: SqlDialect): string {
  switch (dialect) {
    case 'postgres':
      return POSTGRES_NOW_MS
    case 'mysql':
      return MYSQL_NOW_MS
    case 'sqlite':
      return SQLITE_NOW_MS
  }
}
