// consumeRocketMQ: a RocketMQ 5 SimpleConsumer (receive, ack, changeInvisibleDuration) feeding
// Idem's consumer core. The core claims, runs, stores and only then acks; this module receives,
// translates and dead-letters.

import { decodeJson } from '../../consumer/decode-json.js'
import {
  type ConsumerHandle,
  type ConsumerSource,
  type ConsumerStats,
  consumerHandle,
  resolveConsumer,
} from '../../consumer/handle.js'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import type { DeadLetterProducerLike, MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
import { deadLetterer } from './rocketmq-dead-letter.js'
import { type DeliverySettings, MAX_INVISIBLE_MS, toDelivery } from './rocketmq-delivery.js'
import { checkKeySource, type RocketMQKeySource } from './rocketmq-keys.js'
import { KEY_PROPERTY } from './rocketmq-producer.js'
import { ReceiveLoop } from './rocketmq-receive-loop.js'

/** The RocketMQ side of consumeRocketMQ's options. */
export interface RocketMQSourceOptions<P, M extends MessageViewLike = MessageViewLike> {
  /**
   * Your SimpleConsumer, started (`await consumer.startup()`): yours, never shut down by Idem. Its
   * consumer group and subscriptions are its own; its `awaitDuration` is how long each receive
   * long-polls (at least ~3 s: the proxy refuses a receive whose deadline leaves too little).
   */
  client: SimpleConsumerLike<M>
  /**
   * How long a received message stays invisible to the group before RocketMQ delivers it again,
   * renewed every third of it while its handler runs. From 10 s (the proxy's minimum for a
   * receive) to 12 h. Default '30s'.
   */
  invisibleDuration?: Duration
  /** The topic dead-lettered messages are copied to, with their reason in `idem-dead-letter-reason`, before the original is acknowledged. */
  deadLetterTopic: string
  /** A started Producer that sends the dead-letter copies: yours, never shut down by Idem. */
  deadLetterProducer: DeadLetterProducerLike
  /** The idempotency key. Default `'propertyOrKeysOrMessageId'`: the key property, else the first message key, else the message id. */
  key?: RocketMQKeySource<M>
  /** The user property read for the key. Default `idem-key` (what `rocketMQProducer` sets). */
  keyProperty?: string
  /** Payload decoding. Default: JSON in strict UTF-8 (`decodeJson`). A message that fails to decode is dead-lettered with the reason. */
  decode?: (body: Buffer, message: M) => P
  /** Messages with the same ordering key are handled one at a time, in order. Default: the message group (FIFO topics), else the key. */
  orderingKey?: (message: M) => string | undefined
  /** Messages received together are claimed in one store round trip (`handleBatch`). Default true. */
  batch?: boolean
  /** Most messages asked for in one receive. Default: the core's free capacity. */
  maxBatch?: number
  /** Receive failures (proxy unreachable, no route, client shut down) and dead-lettering failures of rejected messages. */
  onError?: (error: unknown) => void
}

/**
 * consumeRocketMQ's options: the RocketMQ ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a
 * ready-made `consumer`.
 */
export type ConsumeRocketMQOptions<
  P = unknown,
  Tx = unknown,
  M extends MessageViewLike = MessageViewLike,
> = RocketMQSourceOptions<P, M> & ConsumerSource<P, Tx>

export interface RocketMQConsumerStats extends ConsumerStats {
  /** Receive calls made (long polls, whether they returned messages or not). */
  receives: number
  /** Receive calls that failed; each is retried with backoff. */
  receiveFailures: number
  /** Messages dead-lettered before reaching the core (no usable key, payload not decodable). */
  rejected: number
}

const DEFAULT_INVISIBLE_MS = 30_000
/** The proxy's minimum invisible duration for a receive (`minInvisibleTimeMillsForRecv`). */
export const MIN_INVISIBLE_MS = 10_000
/** Topic names RocketMQ accepts. */
const TOPIC_NAME = /^[%|a-zA-Z0-9_-]{1,127}$/

/**
 * Consume a SimpleConsumer's subscriptions through the idempotent consumer: per message, claim,
 * run the handler, store the outcome, and only then ack. Resolves at once: the first receive
 * starts in the background.
 *
 * @example
 * ```ts
 * import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
 * import { consumeRocketMQ } from 'idem/rocketmq'
 *
 * const endpoints = '127.0.0.1:8081'
 * const client = new SimpleConsumer({ endpoints, consumerGroup: 'billing', subscriptions: new Map([['orders', '*']]) })
 * await client.startup()
 * const producer = new Producer({ endpoints })
 * await producer.startup()
 * const orders = await consumeRocketMQ<Order>({
 *   client,
 *   deadLetterTopic: 'orders-dead',
 *   deadLetterProducer: producer,
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 * })
 * // on shutdown:
 * await orders.close()
 * await client.shutdown()
 * ```
 */
export async function consumeRocketMQ<P = unknown, Tx = unknown, M extends MessageViewLike = MessageViewLike>(
  options: ConsumeRocketMQOptions<P, Tx, M>,
): Promise<ConsumerHandle<P, Tx, RocketMQConsumerStats>> {
  const where = 'consumeRocketMQ'
  const client = (options as { client?: SimpleConsumerLike<M> | null }).client
  if (client === undefined || client === null) throw new TypeError(`${where} needs client: a started SimpleConsumer`)
  for (const method of ['receive', 'ack', 'changeInvisibleDuration'] as const) {
    if (typeof client[method] !== 'function') {
      throw new TypeError(`${where}: client must be a started SimpleConsumer (it has no ${method}())`)
    }
  }
  const invisibleMs =
    options.invisibleDuration === undefined
      ? DEFAULT_INVISIBLE_MS
      : toMs(options.invisibleDuration, 'invisibleDuration')
  if (invisibleMs < MIN_INVISIBLE_MS || invisibleMs > MAX_INVISIBLE_MS) {
    throw new RangeError(
      `${where}: invisibleDuration must be from 10s to 12h (the RocketMQ proxy refuses a receive outside), got ${invisibleMs} ms`,
    )
  }
  if (typeof options.deadLetterTopic !== 'string' || !TOPIC_NAME.test(options.deadLetterTopic)) {
    throw new TypeError(
      `${where} needs deadLetterTopic: a topic name (letters, digits, _ - % |, at most 127), got ${String(options.deadLetterTopic)}`,
    )
  }
  if (typeof options.deadLetterProducer?.send !== 'function') {
    throw new TypeError(`${where} needs deadLetterProducer: a started Producer, to send the dead-letter copies`)
  }
  const keyProperty = options.keyProperty ?? KEY_PROPERTY
  if (typeof keyProperty !== 'string' || keyProperty === '') {
    throw new TypeError(`${where}: keyProperty must be a property name, got ${String(keyProperty)}`)
  }
  const maxBatch =
    options.maxBatch === undefined ? Number.POSITIVE_INFINITY : positiveInteger(options.maxBatch, 'maxBatch')
  const key = checkKeySource<M>(options.key ?? 'propertyOrKeysOrMessageId')
  const { core } = resolveConsumer(options, where)
  const deadLetter = deadLetterer(client, { topic: options.deadLetterTopic, producer: options.deadLetterProducer })
  const settings: DeliverySettings<P, M> = {
    consumer: client,
    key,
    keyProperty,
    decode: options.decode ?? (decodeJson as (body: Buffer) => P),
    invisibleMs,
    deadLetter,
    ...(options.orderingKey === undefined ? {} : { orderingKey: options.orderingKey }),
  }
  const onError = options.onError ?? (() => {})
  const stats: RocketMQConsumerStats = { receives: 0, receiveFailures: 0, rejected: 0 }
  const loop = new ReceiveLoop<P, M>(client, core, stats, {
    translate: (message) => toDelivery(message, settings),
    deadLetter,
    batch: options.batch ?? true,
    maxBatch,
    invisibleMs,
    onError,
  })
  return consumerHandle(core, stats, {
    done: loop.done,
    async close() {
      await loop.stop()
      await core.close()
    },
  })
}
