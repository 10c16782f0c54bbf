// The outbox relay: claims pending rows for a lease, publishes each through a Producer (waiting
// for the broker's confirmation), then marks them sent. At-least-once by construction; the
// message ids make the duplicates recognisable, and consumer dedup turns them into one effect.
//
// Why a lease, not a transaction held across the publish: holding `FOR UPDATE` locks while
// waiting for broker confirms keeps a connection and a transaction open for network time (on
// PostgreSQL it also holds back vacuum; on SQLite it holds the only write lock, so every business
// transaction that adds to the outbox would queue behind the broker). Instead the claim is a
// short transaction that stamps the rows with a token and `available_at = now + lease`; the
// publishes run outside any transaction; the marks are short transactions again. The cost: a
// relay that dies holding rows delays them by at most one lease, and a relay slower than its
// lease may publish a row another relay also publishes (a duplicate, with the same id).
//
// Crash timeline (one row, id M):
//   t0  claim: attempts+1, token T, available_at = now + lease (committed)
//   t1  publish(M) … broker confirms
//   t2  mark sent (committed)
//   crash before t0 commits: the claim rolls back; the row is pending as before.
//   crash between t0 and t1 (nothing published): the row comes back when the lease ends.
//   crash between t1 and t2 (published, not marked): the row comes back when the lease ends and
//       is published again with the same id M; the consumer's Idem record for M makes the second
//       delivery a duplicate (acknowledged, no effect). This is the at-least-once window.
//   crash after t2: done; nothing is published again.
//   every crash after t0 counts one attempt, so a row that kills every relay taking it ends
//       `failed` after maxAttempts claims instead of looping forever.
// Several relays: `FOR UPDATE SKIP LOCKED` (PostgreSQL, MySQL 8, MariaDB 10.6) lets each claim
// skip the rows another is claiming at that instant, and the lease keeps them off each other's
// claimed rows afterwards; SQLite claims under BEGIN IMMEDIATE, one relay at a time. Ordering:
// one relay publishes its batch in seq order, but a retried row is overtaken by later ones, and
// with several relays batches are published concurrently: per-destination order is NOT kept.
// Poison rows: a failed publish is retried after a backoff (the row waits; the rest flow), and
// after maxAttempts the row is `failed` with the error kept, until `outbox.retryFailed`.

import { randomUUID } from 'node:crypto'
import { positiveInteger, toMs } from '../contract/duration.js'
import type { OutgoingMessage, Producer } from '../producer/types.js'
import type { SqlDatabase } from '../sql/core/executor.js'
import type { Outbox, OutboxBacklog } from './outbox.js'
import { outboxStatements } from './outbox-sql.js'
import {
  defaultBackoff,
  type OutboxRelayOptions,
  type RelayBatch,
  type RelayErrorContext,
  type RelayStats,
  warnUnlessPublish,
} from './relay-options.js'
import { type ClaimedRow, decodeRow, errorText, RelayLoop, toClaimedRow } from './relay-parts.js'

/**
 * Publishes the outbox's pending rows through a confirming `Producer`, then marks them sent.
 *
 * @example
 * const relay = new OutboxRelay({ outbox, db, producer: amqpProducer({ client: connection, routingKey: 'orders' }) })
 * relay.start()
 * // on shutdown:
 * await relay.stop()
 */
export class OutboxRelay {
  readonly #outbox: Outbox
  readonly #db: SqlDatabase<unknown>
  readonly #producer: Producer
  readonly #batchSize: number
  readonly #leaseMs: number
  readonly #maxAttempts: number
  readonly #backoff: (attempt: number) => number
  readonly #skipLocked: boolean
  readonly #retentionMs: number | null
  readonly #onError: (error: unknown, context: RelayErrorContext) => void
  readonly #stats: RelayStats = {
    batches: 0,
    claimed: 0,
    published: 0,
    retried: 0,
    failed: 0,
    released: 0,
    errors: 0,
    swept: 0,
  }
  readonly #loop: RelayLoop

  constructor(options: OutboxRelayOptions) {
    if (options?.outbox === undefined || options.db === undefined || options.producer === undefined) {
      throw new TypeError('OutboxRelay needs { outbox, db, producer }')
    }
    this.#outbox = options.outbox
    this.#db = options.db
    this.#producer = options.producer
    this.#batchSize = positiveInteger(options.batchSize ?? 100, 'batchSize')
    // One claim statement lists every seq it takes: keep it a reasonable size.
    if (this.#batchSize > 1000) throw new RangeError(`batchSize must be at most 1000, got ${this.#batchSize}`)
    this.#leaseMs = toMs(options.lease ?? '30s', 'lease')
    this.#maxAttempts = positiveInteger(options.maxAttempts ?? 10, 'maxAttempts')
    this.#backoff = options.backoff ?? defaultBackoff
    this.#skipLocked = options.skipLocked ?? true
    this.#retentionMs = options.retention === false ? null : toMs(options.retention ?? '7d', 'retention')
    this.#onError = options.onError ?? warnUnlessPublish
    const sweepMs = toMs(options.sweepInterval ?? '1h', 'sweepInterval')
    this.#loop = new RelayLoop(toMs(options.pollInterval ?? '1s', 'pollInterval'), {
      runOnce: async () => {
        const batch = await this.runOnce()
        return batch.claimed + batch.failed >= this.#batchSize
      },
      sweep: this.#retentionMs === null ? null : { everyMs: sweepMs, run: () => this.#sweepAll() },
      onError: (error, stage) => this.#report(error, { stage }),
    })
  }

  /** Counters since this relay was created. */
  get stats(): Readonly<RelayStats> {
    return { ...this.#stats }
  }

  get running(): boolean {
    return this.#loop.running
  }

  /** The outbox's backlog (pending, failed, the oldest pending row's age): the relays' lag. */
  backlog(): Promise<OutboxBacklog> {
    return this.#outbox.backlog(this.#db)
  }

  /** Poll until `stop()`: a full batch is followed at once by the next; otherwise wait `pollInterval`. */
  start(): void {
    this.#loop.start()
  }

  /** Poll now rather than at the end of the wait (after adding messages, say). */
  wake(): void {
    this.#loop.wake()
  }

  /** Stop polling; resolves once the batch in hand is published and marked. */
  stop(): Promise<void> {
    return this.#loop.stop()
  }

  /** Claim one batch, publish it, record the outcomes. Rejects only when the claim itself fails. */
  async runOnce(): Promise<RelayBatch> {
    const statements = outboxStatements(this.#db.dialect, this.#outbox.table)
    const token = randomUUID()
    const claimedAt = performance.now()
    const { rows, exhausted } = await this.#db.transaction(async (_tx, sql) => {
      const selected = (await sql.execute(statements.selectClaimable(this.#batchSize, this.#skipLocked), [])).rows
      const all = selected.map(toClaimedRow)
      const spent = all.filter((row) => row.attempt > this.#maxAttempts)
      const fresh = all.filter((row) => row.attempt <= this.#maxAttempts)
      if (spent.length > 0) {
        const reason = `claimed ${this.#maxAttempts} times without an outcome: the relays holding it died or lost their lease`
        await sql.execute(statements.markExhausted(spent.length), [reason, ...spent.map((row) => row.seq)])
      }
      if (fresh.length > 0) {
        await sql.execute(statements.claim(fresh.length), [token, this.#leaseMs, ...fresh.map((row) => row.seq)])
      }
      return { rows: fresh, exhausted: spent.length }
    })
    const batch: RelayBatch = { claimed: rows.length, published: 0, retried: 0, failed: exhausted, released: 0 }
    const sent: ClaimedRow[] = []
    // Stop publishing with a fifth of the lease (at most 5 s) left: past the lease another relay
    // may take the rows, and each publish after that risks a duplicate.
    const deadline = claimedAt + this.#leaseMs - Math.min(this.#leaseMs / 5, 5000)
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as ClaimedRow
      if (performance.now() > deadline) {
        batch.released = await this.#release(statements.release, token, rows.slice(i))
        break
      }
      let message: OutgoingMessage
      try {
        message = decodeRow(row)
      } catch (error) {
        batch.failed += await this.#record(statements.markFailed, [errorText(error), row.seq, token], row)
        continue
      }
      try {
        await this.#producer.publish(message)
        sent.push(row)
        batch.published++
      } catch (error) {
        this.#report(error, { stage: 'publish', messageId: row.id })
        if (row.attempt >= this.#maxAttempts) {
          batch.failed += await this.#record(statements.markFailed, [errorText(error), row.seq, token], row)
        } else {
          const delay = Math.max(0, Math.round(this.#backoff(row.attempt)))
          batch.retried += await this.#record(statements.retryLater, [delay, errorText(error), row.seq, token], row)
        }
      }
    }
    await this.#markSent(statements.markSent, sent)
    this.#stats.batches++
    for (const name of ['claimed', 'published', 'retried', 'failed', 'released'] as const) {
      this.#stats[name] += batch[name]
    }
    return batch
  }

  /** Mark the confirmed rows sent; retried a few times, since failing here means republishing them. */
  async #markSent(statement: (count: number) => string, rows: readonly ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#db.transaction((_tx, sql) =>
          sql.execute(
            statement(rows.length),
            rows.map((row) => row.seq),
          ),
        )
        return
      } catch (error) {
        this.#report(error, { stage: 'record' })
        // Given up: the rows come back after the lease and go out again, with the same ids.
        if (attempt === 3) return
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt))
      }
    }
  }

  /** One outcome statement on one row; 1 when it applied (the row was still ours), else 0. */
  async #record(statement: string, params: unknown[], row: ClaimedRow): Promise<number> {
    try {
      const result = await this.#db.transaction((_tx, sql) => sql.execute(statement, params))
      return result.affectedRows > 0 ? 1 : 0
    } catch (error) {
      // The row stays claimed; the lease brings it back.
      this.#report(error, { stage: 'record', messageId: row.id })
      return 0
    }
  }

  async #release(statement: (count: number) => string, token: string, rows: ClaimedRow[]): Promise<number> {
    try {
      const params = [token, ...rows.map((row) => row.seq)]
      return (await this.#db.transaction((_tx, sql) => sql.execute(statement(rows.length), params))).affectedRows
    } catch (error) {
      this.#report(error, { stage: 'record' })
      return 0
    }
  }

  async #sweepAll(): Promise<void> {
    if (this.#retentionMs === null) return
    for (;;) {
      const deleted = await this.#outbox.sweep(this.#db, this.#retentionMs, 1000)
      this.#stats.swept += deleted
      if (deleted < 1000 || this.#loop.stopping) return
    }
  }

  #report(error: unknown, context: RelayErrorContext): void {
    if (context.stage !== 'publish') this.#stats.errors++
    try {
      this.#onError(error, context)
    } catch {
      // A throwing listener must not stop the relay.
    }
  }
}
