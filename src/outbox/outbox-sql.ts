// Every statement the outbox and its relay run, per dialect. `status = 'pending'` and `'sent'` are
// literals on purpose: PostgreSQL and SQLite use a partial index only when the query repeats its
// predicate verbatim.

import { nowMs } from '../sql/core/clock.js'
import { placeholder, type SqlDialect } from '../sql/core/executor.js'
import { outboxNames } from './outbox-schema.js'

/** The columns a relay reads from a claimed row. */
const CLAIMED = 'seq, id, destination, payload, headers, attempts'

export interface OutboxStatements {
  readonly dialect: SqlDialect
  /** (id, destination, payload, headers): insert, or nothing when the id is already there. */
  add: string
  /** Claimable rows in seq order, locked; `FOR UPDATE SKIP LOCKED` where the server has it. */
  selectClaimable(limit: number, skipLocked: boolean): string
  /** (token, leaseMs, …seqs): take the rows for a lease. */
  claim(count: number): string
  /** (…seqs): the broker confirmed them. */
  markSent(count: number): string
  /** (backoffMs, error, seq, token): publish failed; try again after the backoff. */
  retryLater: string
  /** (error, seq, token): publish failed for the last allowed time, or cannot succeed. */
  markFailed: string
  /** (error, …seqs): claimed `maxAttempts` times without an outcome (relays died holding them). */
  markExhausted(count: number): string
  /** (token, …seqs): hand back rows this relay claimed but did not try. */
  release(count: number): string
  /** (olderThanMs): delete up to `limit` sent rows older than the retention. */
  sweep(limit: number): string
  /** Pending count, failed count, oldest pending row's age. */
  backlog: string
  /** Failed rows back to pending with a fresh attempt budget; (…ids) when given. */
  retryFailed(count: number): string
}

const cache = new Map<string, OutboxStatements>()

export function outboxStatements(dialect: SqlDialect, table: string): OutboxStatements {
  const cacheKey = `${dialect}\u0000${table}`
  let statements = cache.get(cacheKey)
  if (statements === undefined) {
    statements = build(dialect, table)
    cache.set(cacheKey, statements)
  }
  return statements
}

function build(dialect: SqlDialect, table: string): OutboxStatements {
  const t = outboxNames(dialect, table).table
  const now = nowMs(dialect)
  const p = (n: number) => placeholder(dialect, n)
  /** `p(from), …, p(from + count - 1)` */
  const list = (from: number, count: number) => Array.from({ length: count }, (_, i) => p(from + i)).join(', ')

  const add =
    dialect === 'mysql'
      ? // Not INSERT IGNORE: it would also turn a too-long value or a bad column into a warning.
        `INSERT INTO ${t} (id, destination, payload, headers, available_at, created_at)
         VALUES (?, ?, ?, ?, ${now}, ${now}) ON DUPLICATE KEY UPDATE id = id`
      : `INSERT INTO ${t} (id, destination, payload, headers, available_at, created_at)
         VALUES (${list(1, 4)}, ${now}, ${now}) ON CONFLICT (id) DO NOTHING`

  return {
    dialect,
    add,
    selectClaimable(limit, skipLocked) {
      // SQLite has no row locks: the relay's BEGIN IMMEDIATE holds the database's write lock.
      const lock = dialect === 'sqlite' ? '' : skipLocked ? ' FOR UPDATE SKIP LOCKED' : ' FOR UPDATE'
      return `SELECT ${CLAIMED} FROM ${t} WHERE status = 'pending' AND available_at <= ${now}
        ORDER BY seq LIMIT ${Math.trunc(limit)}${lock}`
    },
    claim: (count) =>
      `UPDATE ${t} SET attempts = attempts + 1, claim_token = ${p(1)}, available_at = ${now} + ${p(2)}
        WHERE seq IN (${list(3, count)})`,
    // No claim_token test: a confirmed publish is a fact whoever holds the row now, and recording
    // it spares the next holder a duplicate.
    markSent: (count) =>
      `UPDATE ${t} SET status = 'sent', sent_at = ${now}, claim_token = NULL
        WHERE seq IN (${list(1, count)}) AND status = 'pending'`,
    // The claim_token test: a relay whose lease lapsed must not reschedule a row another relay holds.
    retryLater: `UPDATE ${t} SET available_at = ${now} + ${p(1)}, claim_token = NULL, last_error = ${p(2)}
      WHERE seq = ${p(3)} AND claim_token = ${p(4)} AND status = 'pending'`,
    markFailed: `UPDATE ${t} SET status = 'failed', claim_token = NULL, last_error = ${p(1)}
      WHERE seq = ${p(2)} AND claim_token = ${p(3)} AND status = 'pending'`,
    markExhausted: (count) =>
      `UPDATE ${t} SET status = 'failed', claim_token = NULL, last_error = ${p(1)}
        WHERE seq IN (${list(2, count)}) AND status = 'pending'`,
    // attempts - 1: a row handed back untried (lease nearly over) has not been attempted.
    release: (count) =>
      `UPDATE ${t} SET available_at = ${now}, claim_token = NULL, attempts = attempts - 1
        WHERE claim_token = ${p(1)} AND seq IN (${list(2, count)}) AND status = 'pending'`,
    // Limits are written into the text: a prepared LIMIT ? is refused by some MySQL drivers' paths.
    sweep: (limit) =>
      dialect === 'mysql'
        ? `DELETE FROM ${t} WHERE status = 'sent' AND sent_at < ${now} - ? ORDER BY sent_at LIMIT ${Math.trunc(limit)}`
        : `DELETE FROM ${t} WHERE seq IN (SELECT seq FROM ${t} WHERE status = 'sent' AND sent_at < ${now} - ${p(1)}
            ORDER BY sent_at LIMIT ${Math.trunc(limit)})`,
    backlog: `SELECT
        (SELECT count(*) FROM ${t} WHERE status = 'pending') AS pending,
        (SELECT count(*) FROM ${t} WHERE status = 'failed') AS failed,
        (SELECT ${now} - min(created_at) FROM ${t} WHERE status = 'pending') AS oldest_ms`,
    retryFailed: (count) =>
      `UPDATE ${t} SET status = 'pending', attempts = 0, available_at = ${now}, claim_token = NULL
        WHERE status = 'failed'${count === 0 ? '' : ` AND id IN (${list(1, count)})`}`,
  }
}
