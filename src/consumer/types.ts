// The broker-agnostic consumer contract: what a broker adapter hands the core (a Delivery), what
// the core asks of it, and what a handler sees. The core claims, runs, completes and only then
// acknowledges; adapters only translate (docs/architecture.md, "Consumers").

import type { Duration } from '../contract/duration.js'
import type { Idempotency, RunContext } from '../core/idempotency.js'
import type { TransactionContext } from '../core/transaction.js'
import type { SqlDatabase } from '../sql/core/executor.js'

/** One delivery of one message, as an adapter presents it. Every method is called at most once, except `extend`. */
export interface Delivery<P = unknown> {
  /**
   * The idempotency key: a producer-set id (AMQP messageId, Nats-Msg-Id, a header or field)
   * catches publisher duplicates too; a broker coordinate (stream sequence, entry id) only
   * catches redeliveries. Adapters prefer the first. Printable ASCII, 1–255 characters.
   */
  readonly key: string
  readonly payload: P
  /** 1 on the first delivery, as the broker counts it (x-delivery-count, JetStream, XPENDING); best effort where it cannot. */
  readonly deliveryCount: number
  /** Messages with the same ordering key are handled one at a time, in arrival order. Default: `key`. */
  readonly orderingKey?: string
  /** The broker's own message, for handlers that need headers or metadata. */
  readonly raw?: unknown
  /**
   * The message's headers as strings (AMQP headers, NATS headers, Kafka headers, MQTT 5 user
   * properties, a stream entry's fields): read by probes, such as a tracer continuing the trace
   * context (`traceparent`) the producer put there. Called only when needed.
   */
  headers?(): Readonly<Record<string, string | undefined>>
  /** The broker forgets the message. Called only after the outcome is stored (or the transaction committed). */
  ack(): Promise<void>
  /** Hand the message back for redelivery no sooner than `delayMs` (where the broker supports a delay). */
  retry(delayMs: number): Promise<void>
  /** Move the message to the dead-letter destination with `reason`; it is not redelivered. */
  deadLetter(reason: string): Promise<void>
  /** Tell the broker the handler is still at work (JetStream working(), XCLAIM to self, …). */
  extend?(): Promise<void>
  /** How often the core calls `extend`, in ms (a third of the broker's timer): from `handle` until the broker is told the outcome. */
  readonly extendEveryMs?: number
  /**
   * True once the broker took the message back before its handler started (a Kafka partition
   * rewound to an earlier failed offset, or revoked by a rebalance): the core then hands it back
   * (`retry(0)`, not counted as an attempt) without running the handler. Checked just before the
   * handler would run.
   */
  withdrawn?(): boolean
}

/**
 * What a handler receives besides the payload. `signal` aborts when the claim is lost (LEASE_LOST)
 * or when `close()` gives up waiting for the handler (shutdownTimeout).
 */
export interface MessageContext<P = unknown> extends RunContext {
  readonly delivery: Delivery<P>
}

export interface TransactionMessageContext<P = unknown> extends TransactionContext {
  readonly delivery: Delivery<P>
  /** Aborted when `close()` gives up waiting for the handler (shutdownTimeout); the transaction then rolls back. */
  readonly signal: AbortSignal
}

/** How a delivery ended, as reported to listeners and returned by `handle`. */
export const DeliveryOutcome = {
  /** The handler ran, its outcome was stored, the message acknowledged. */
  EXECUTED: 'executed',
  /** A duplicate of completed work: acknowledged without running the handler. */
  REPLAYED: 'replayed',
  /** Handed back for a later redelivery (in progress elsewhere, handler failed, store down, shutdown). */
  RETRIED: 'retried',
  /** Moved to the dead-letter destination (maxAttempts reached, a final error, a key reused with another payload). */
  DEAD_LETTERED: 'dead_lettered',
} as const
export type DeliveryOutcome = (typeof DeliveryOutcome)[keyof typeof DeliveryOutcome]

export interface DeliveryResult {
  outcome: DeliveryOutcome
  key: string
  /** For retried: the delay asked of the broker. */
  delayMs?: number
  /** For retried and dead-lettered: why (the error's name and message). For executed: a note, e.g. the lease was lost after the work ran. */
  reason?: string
  /** For retried and dead-lettered: the error behind it (the handler's, or the stored `isFinal` error replayed to a duplicate). */
  error?: unknown
}

/**
 * A time-window filter asked before the claim (`DedupWindow` of idem/window fits): `seen` marks the
 * id and answers true for a repeat within the window, atomically.
 */
export interface DeliveryWindow {
  seen(source: string, id: string): Promise<boolean>
  seenMany(entries: readonly { source: string; id: string }[]): Promise<boolean[]>
  forget(source: string, id: string): Promise<void>
}

interface CommonOptions<P = unknown> {
  idem: Idempotency
  /** Options of each message's record; `key` and `payload` come from the delivery. Default: the `idem`'s. */
  scope?: string
  /** How long a completed message's record is kept: the window in which a duplicate is recognised. */
  ttl?: Duration
  /** Run mode: how long a claim is honoured without renewal (renewed every third of it while the handler runs). */
  lease?: Duration
  /** Fingerprint only these dotted paths of the payload. */
  fingerprintFields?: readonly string[]
  /** Errors that are stored (a duplicate gets them replayed) and dead-lettered at once, never retried. Default: the `idem`'s. */
  isFinal?: (error: unknown) => boolean
  /** Deliveries processed at once (claim, handler, ack); more are queued. Also what `capacity` counts down from. Default 8. */
  concurrency?: number
  /** Deliveries after which a failing message is dead-lettered instead of retried. Default 5. */
  maxAttempts?: number
  /** Delay before the retry of a failed attempt `n` (1-based). Default: 1 s doubling to 60 s, with jitter. */
  backoff?: (attempt: number) => number
  /** How long `close()` lets in-flight handlers finish before aborting them. Default 30 s. */
  shutdownTimeout?: Duration
  /**
   * Drop repeats within a time window before the claim (docs/window.md): a first delivery
   * (`deliveryCount` 1) whose key the window saw is acknowledged unrun, reported `replayed` with
   * reason `window`. Broker redeliveries bypass it (the record catches those); the mark is
   * forgotten when a delivery is retried or dead-lettered. The window being down retries the
   * delivery, like a store that is down.
   */
  window?: DeliveryWindow
  /** The window's source of a delivery (a device, a topic). Default: `scope`, else ''. */
  windowSource?: (delivery: Delivery<P>) => string
  /**
   * Listeners attached before the first delivery, so that none is missed (a listener added with
   * `on()` once an adapter resolved may come after the first messages of a non-empty queue).
   */
  on?: ConsumerListeners
}

/** `run()` mode: at-least-once execution with deduplication, for any store. */
export interface RunConsumerOptions<P> extends CommonOptions<P> {
  handler: (payload: P, ctx: MessageContext<P>) => Promise<unknown> | unknown
}

/** Transaction mode: the record and the handler's writes commit together (SQL stores). */
export interface TransactionConsumerOptions<P, Tx> extends CommonOptions<P> {
  db: SqlDatabase<Tx>
  transactionHandler: (tx: Tx, payload: P, ctx: TransactionMessageContext<P>) => Promise<unknown> | unknown
}

export type ConsumerOptions<P, Tx = unknown> = RunConsumerOptions<P> | TransactionConsumerOptions<P, Tx>

/** Lifecycle events, for metrics. */
export interface ConsumerEvents {
  received: { key: string; deliveryCount: number }
  settled: DeliveryResult & { durationMs: number }
  /** The broker refused an ack/retry/deadLetter/extend call (the delivery will come back). */
  broker_error: { key: string; operation: 'ack' | 'retry' | 'deadLetter' | 'extend'; error: unknown }
}

/** One listener per event, given as the `on` option: `{ settled: (result) => … }`. */
export type ConsumerListeners = { [K in keyof ConsumerEvents]?: (event: ConsumerEvents[K]) => void }
