// Options of consumeAmqp, and the handle's counters.

import type { ConsumerHandle, ConsumerSource, ConsumerStats } from '../../consumer/handle.js'
import type { Duration } from '../../contract/duration.js'
import type { AmqpConnection, AmqpMessage } from './amqp-driver.js'
import type { AmqpKeySource } from './amqp-message.js'

/** The RabbitMQ side of consumeAmqp's options. */
export interface AmqpSourceOptions<P> {
  /**
   * An amqplib ChannelModel (`await amqp.connect(url)`); a recovering one (`connect(url, { recovery: true })`)
   * also survives connection loss. Yours: Idem opens channels on it and never closes it.
   */
  client: AmqpConnection
  /** The queue to consume (yours: declared by you, quorum recommended). */
  queue: string
  /** Unacknowledged messages the broker sends ahead. Default: twice the core's concurrency (or batch size). */
  prefetch?: number
  /** Where the idempotency key comes from. Default: `properties.messageId`. */
  key?: AmqpKeySource
  /** Body to payload. Default JSON in strict UTF-8 (`decodeJson`). A body that does not decode is dead-lettered with the reason. */
  decode?: (content: Buffer, message: AmqpMessage) => P
  /**
   * How a retry waits. Default: delay queues (`<queue>.idem.delay.<ms>`, TTL then dead-lettered
   * back); 'requeue': hold the message unacked for the delay, then reject it with requeue.
   */
  retry?: { delayTiers?: readonly Duration[] } | 'requeue'
  /**
   * Where dead letters go. Default: Idem's copy with the reason in `x-idem-dead-letter-reason`, to
   * `<queue>.idem.dlx` → `<queue>.idem.dlq`; or your exchange; or 'reject' (requeue false, to the
   * queue's own x-dead-letter-exchange, without the reason).
   */
  deadLetter?: { exchange: string; routingKey: string } | 'reject'
  /** Declare Idem's dead-letter exchange and queue and the delay queues. Default true. */
  assertTopology?: boolean
  /**
   * The broker's consumer_timeout (RabbitMQ default 30 min). A message still unsettled at 90% of
   * it is handed back (reject, requeue) before the broker closes the whole channel over it.
   */
  consumerTimeout?: Duration
  /** How long to wait for the confirm of a dead-letter or delay copy. Default 30 s. */
  confirmTimeout?: Duration
  /**
   * Hand deliveries to the core in batches (one store round trip to claim them): at most `size`,
   * waiting at most `maxWait` (default 20 ms) for a batch to fill.
   */
  batch?: {
    size: number
    maxWait?: Duration
    /** @deprecated Use `maxWait`. */
    maxWaitMs?: number
  }
  /** Channel errors, reopen failures, messages dead-lettered before reaching the core. */
  onError?: (error: unknown) => void
}

/** consumeAmqp's options before the rename of `connection` to `client`. */
type LegacyConnection<P> = Omit<AmqpSourceOptions<P>, 'client'> & {
  /** @deprecated Use `client`. */
  connection: AmqpConnection
  client?: never
}

/**
 * consumeAmqp's options: the RabbitMQ ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a
 * ready-made `consumer`.
 */
export type ConsumeAmqpOptions<P = unknown, Tx = unknown> = (AmqpSourceOptions<P> | LegacyConnection<P>) &
  ConsumerSource<P, Tx>

export interface AmqpConsumerStats extends ConsumerStats {
  /** Consume channels opened: 1, plus one per reopening after a channel or connection loss. */
  channelsOpened: number
  /** Messages handed back because they neared the consumer timeout unsettled. */
  handedBack: number
  /** Messages dead-lettered before reaching the core (no usable key, body not decodable). */
  rejected: number
}

/** @deprecated Use `AmqpConsumerStats`. */
export type AmqpSubscriptionStats = AmqpConsumerStats

/** @deprecated Use `ConsumerHandle<P, Tx, AmqpConsumerStats>` (from `idem/consumer`). */
export type AmqpSubscription<P = unknown, Tx = unknown> = ConsumerHandle<P, Tx, AmqpConsumerStats>
