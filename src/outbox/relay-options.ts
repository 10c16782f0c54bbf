// The relay's options, what it reports (per batch, in total, to onError) and its defaults.

import type { Duration } from '../contract/duration.js'
import type { Producer } from '../producer/types.js'
import type { SqlDatabase } from '../sql/core/executor.js'
import type { Outbox } from './outbox.js'

export interface OutboxRelayOptions {
  outbox: Outbox
  /** The database the outbox lives in (`fromPg(pool)`, `fromMysql2(pool)`, `fromBetterSqlite3(db)`, …). */
  db: SqlDatabase<unknown>
  producer: Producer
  /** Rows claimed per batch (1–1000). Default 100. */
  batchSize?: number
  /** Wait between polls when the outbox is drained (or the database failed). Default '1s'. */
  pollInterval?: Duration
  /** How long a claim keeps a batch from other relays. Must exceed a batch's publish time. Default '30s'. */
  lease?: Duration
  /** Failed publishes (or relay deaths) before a row is marked `failed`. Default 10. */
  maxAttempts?: number
  /** Delay before retrying a row whose publish failed, in ms, by attempt (1, 2, …). Default 1s doubling to 5 min. */
  backoff?: (attempt: number) => number
  /** `FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL; set false on MySQL 5.7, which lacks it. Default true. */
  skipLocked?: boolean
  /** Sent rows older than this are deleted by the running relay; false keeps them. Default '7d'. */
  retention?: Duration | false
  /** How often the running relay sweeps. Default '1h'. */
  sweepInterval?: Duration
  /** Errors the relay recovered from: a failed publish (kept on the row), a database error (retried). */
  onError?: (error: unknown, context: RelayErrorContext) => void
}

export interface RelayErrorContext {
  stage: 'claim' | 'publish' | 'record' | 'sweep'
  /** The message concerned, for `publish` and `record`. */
  messageId?: string
}

export interface RelayBatch {
  /** Rows this call claimed. */
  claimed: number
  /** Published and confirmed (whether or not marking them sent succeeded). */
  published: number
  /** Failed to publish, rescheduled after a backoff. */
  retried: number
  /** Marked failed: maxAttempts reached (or claimed that often without an outcome), or undecodable. */
  failed: number
  /** Handed back untried because the lease was nearly over. */
  released: number
}

export interface RelayStats extends RelayBatch {
  batches: number
  /** Database errors (claims, marks, sweeps) the relay retried or gave up on. */
  errors: number
  swept: number
}

/** Without onError, database errors are not silent (publish errors are kept on their rows). */
export function warnUnlessPublish(error: unknown, context: RelayErrorContext): void {
  if (context.stage !== 'publish') console.warn(`idem outbox relay: ${context.stage} failed:`, error)
}

export const defaultBackoff = (attempt: number) => Math.min(1000 * 2 ** (attempt - 1), 300_000)
