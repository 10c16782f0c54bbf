// consumePulsar: a Shared (or Key_Shared) subscription over Pulsar's WebSocket API feeding Idem's
// consumer core. The core claims, runs, stores and only then acks; this module subscribes, grants
// permits, translates and dead-letters.

import { decodeJson } from '../../consumer/decode-json.js'
import {
  type ConsumerHandle,
  type ConsumerSource,
  type ConsumerStats,
  consumerHandle,
  resolveConsumer,
} from '../../consumer/handle.js'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import { deadLetterCopier } from './pulsar-dead-letter.js'
import { type DeliverySettings, toDelivery } from './pulsar-delivery.js'
import type { PulsarMessage, SocketOpener } from './pulsar-driver.js'
import { KEY_PROPERTY, type PulsarKeySource } from './pulsar-keys.js'
import { Publisher } from './pulsar-publisher.js'
import { Receiver, type ReceiveStats } from './pulsar-receiver.js'
import { webSocketOpener } from './pulsar-socket.js'
import { consumerUrl, parseServiceUrl, parseTopic, producerUrl, type TopicName } from './pulsar-topic.js'

/** The Pulsar side of consumePulsar's options. */
export interface PulsarSourceOptions<P> {
  /** The web service's WebSocket address, e.g. 'ws://127.0.0.1:8080' (the WebSocket service must be enabled). */
  url: string
  /** A persistent topic: 'persistent://tenant/namespace/topic', 'tenant/namespace/topic', or 'topic' (public/default). */
  topic: string
  /** The subscription, created on first use. */
  subscription: string
  /** 'Shared' (default): messages spread over all consumers. 'Key_Shared': one consumer per message key at a time. */
  subscriptionType?: 'Shared' | 'Key_Shared'
  /** Where a subscription created now starts. Default 'Earliest', so that nothing published before it is skipped. */
  initialPosition?: 'Earliest' | 'Latest'
  /**
   * The topic dead-lettered messages are copied to, with their reason in `idem-dead-letter-reason`,
   * before the original is acknowledged. `false`: only acknowledge (the message and its reason are lost).
   */
  deadLetterTopic: string | false
  /** How long to wait for the dead-letter topic's confirmation. Default '30s'. */
  deadLetterTimeout?: Duration
  /**
   * The redelivery delay of every negative ack (the subscription's negativeAckRedeliveryDelay):
   * Pulsar cannot delay one message more than another, so the core's backoff is not applied. Default '1s'.
   */
  retryDelay?: Duration
  /**
   * Also set Pulsar's own dead-letter policy: after this many redeliveries the broker moves the
   * message to `deadLetterTopic` without a reason. At least maxAttempts, so that Idem dead-letters
   * a failing message first; a net for messages Idem cannot settle. Default: none.
   */
  maxRedeliverCount?: number
  /** The idempotency key. Default `'propertyOrMessageId'`: the `keyProperty`, else the message id. */
  key?: PulsarKeySource
  /** The property a producer's id is read from. Default 'idem-key' (what pulsarProducer sets). */
  keyProperty?: string
  /** Payload decoding. Default: JSON in strict UTF-8 (`decodeJson`). A message that fails to decode is dead-lettered with the reason. */
  decode?: (data: Uint8Array, message: PulsarMessage) => P
  /** Messages with the same ordering key are handled one at a time, in order. Default: the idempotency key. */
  orderingKey?: (message: PulsarMessage) => string | undefined
  /** Messages received together are claimed in one store round trip (`handleBatch`). Default true. */
  batch?: boolean
  /** Most messages asked for at once. Default: the core's concurrency. */
  maxBatch?: number
  /** The consumer name the broker shows in its stats. */
  consumerName?: string
  /** HTTP headers of the WebSocket handshakes and admin requests, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Readonly<Record<string, string>>
  /** How long opening a socket may take. Default '10s'. */
  connectTimeout?: Duration
  /** Socket failures (the consumer socket closed, a reconnect refused) and dead-lettering failures of undecodable messages. */
  onError?: (error: unknown) => void
  /** @internal Opens the sockets (tests hand in a double). Default: the `ws` package. */
  openSocket?: SocketOpener
}

/**
 * consumePulsar's options: the Pulsar ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a
 * ready-made `consumer`.
 */
export type ConsumePulsarOptions<P = unknown, Tx = unknown> = PulsarSourceOptions<P> & ConsumerSource<P, Tx>

export interface PulsarConsumerStats extends ConsumerStats, ReceiveStats {}

const DEFAULT_MAX_ATTEMPTS = 5
const DEFAULT_RETRY_DELAY_MS = 1000
const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/**
 * Consume a Pulsar subscription through the idempotent consumer: per message, claim, run the
 * handler, store the outcome, and only then acknowledge it. Resolves once the subscription's socket
 * is open (a bad url, topic or subscription rejects here, with the broker's reason).
 *
 * @example
 * ```ts
 * import { consumePulsar } from 'idem/pulsar'
 *
 * const orders = await consumePulsar<Order>({
 *   url: 'ws://127.0.0.1:8080',
 *   topic: 'persistent://public/default/orders',
 *   subscription: 'billing',
 *   deadLetterTopic: 'persistent://public/default/orders-dead',
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 * })
 * // on shutdown:
 * await orders.close()
 * ```
 */
export async function consumePulsar<P = unknown, Tx = unknown>(
  options: ConsumePulsarOptions<P, Tx>,
): Promise<ConsumerHandle<P, Tx, PulsarConsumerStats>> {
  const where = 'consumePulsar'
  if (options === null || typeof options !== 'object') throw new TypeError(`${where} needs an options object`)
  const base = parseServiceUrl(options.url, where)
  const topic = parseTopic(options.topic)
  if (typeof options.subscription !== 'string' || options.subscription.length === 0) {
    throw new TypeError(`${where} needs subscription: the subscription's name`)
  }
  const subscriptionType = options.subscriptionType ?? 'Shared'
  if (subscriptionType !== 'Shared' && subscriptionType !== 'Key_Shared') {
    // Exclusive and Failover subscriptions take only cumulative acks in order; Idem acks one message at a time.
    throw new TypeError(`${where}: subscriptionType must be 'Shared' or 'Key_Shared', got ${String(subscriptionType)}`)
  }
  const initialPosition = options.initialPosition ?? 'Earliest'
  if (initialPosition !== 'Earliest' && initialPosition !== 'Latest') {
    throw new TypeError(`${where}: initialPosition must be 'Earliest' or 'Latest', got ${String(initialPosition)}`)
  }
  if (options.deadLetterTopic === undefined) {
    throw new TypeError(`${where} needs deadLetterTopic: a topic for dead letters, or false to only acknowledge them`)
  }
  const deadLetterTopic =
    options.deadLetterTopic === false ? false : parseTopic(options.deadLetterTopic, 'deadLetterTopic')
  if (deadLetterTopic !== false && deadLetterTopic.full === topic.full) {
    throw new TypeError(`${where}: deadLetterTopic must not be the consumed topic`)
  }
  const retryDelayMs =
    options.retryDelay === undefined ? DEFAULT_RETRY_DELAY_MS : toMs(options.retryDelay, 'retryDelay')
  const deadLetterTimeoutMs =
    options.deadLetterTimeout === undefined ? DEFAULT_TIMEOUT_MS : toMs(options.deadLetterTimeout, 'deadLetterTimeout')
  const connectTimeoutMs =
    options.connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : toMs(options.connectTimeout, 'connectTimeout')
  const keyProperty = options.keyProperty ?? KEY_PROPERTY
  if (typeof keyProperty !== 'string' || keyProperty.length === 0) {
    throw new TypeError(`${where}: keyProperty must be a property name`)
  }
  const maxBatch =
    options.maxBatch === undefined ? Number.POSITIVE_INFINITY : positiveInteger(options.maxBatch, 'maxBatch')
  const { core, options: consumerOptions } = resolveConsumer(options, where)
  // A ready-made consumer tells its maxAttempts; options give it or take the default.
  const maxAttempts =
    consumerOptions === undefined ? core.maxAttempts : (consumerOptions.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
  if (options.maxRedeliverCount !== undefined) {
    positiveInteger(options.maxRedeliverCount, 'maxRedeliverCount')
    if (deadLetterTopic === false) throw new TypeError(`${where}: maxRedeliverCount needs a deadLetterTopic`)
    if (options.maxRedeliverCount < maxAttempts) {
      // The broker would move a failing message before its last attempt, without a reason.
      throw new RangeError(
        `${where}: maxRedeliverCount (${options.maxRedeliverCount}) must be at least maxAttempts (${maxAttempts})`,
      )
    }
  }
  const concurrency = core.capacity + core.inFlight
  const open =
    options.openSocket ??
    webSocketOpener({
      handshakeTimeoutMs: connectTimeoutMs,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    })
  const url = consumerUrl(base, topic, options.subscription, {
    subscriptionType,
    subscriptionInitialPosition: initialPosition,
    // Pull mode: nothing is sent without a permit (see pulsar-receiver.ts).
    pullMode: 'true',
    // The broker-side client prefetches at most this many for this consumer, held from the others.
    receiverQueueSize: String(Math.max(1, Math.min(concurrency, maxBatch))),
    negativeAckRedeliveryDelay: String(retryDelayMs),
    // No ack timeout: it cannot be extended over the WebSocket API, so a long handler would get
    // its message redelivered mid-run. The core's lease protects long handlers instead.
    ackTimeoutMillis: '0',
    ...(options.consumerName === undefined ? {} : { consumerName: options.consumerName }),
    ...(options.maxRedeliverCount === undefined || deadLetterTopic === false
      ? {}
      : { maxRedeliverCount: String(options.maxRedeliverCount), deadLetterTopic: deadLetterTopic.full }),
  })
  const deadLetterPublisher =
    deadLetterTopic === false ? false : new Publisher(producerUrl(base, deadLetterTopic), open, deadLetterTimeoutMs)
  const settings: DeliverySettings<P> = {
    key: options.key ?? 'propertyOrMessageId',
    keyProperty,
    topic: topic.full,
    decode: options.decode ?? (decodeJson as (data: Uint8Array) => P),
    deadLetter: deadLetterCopier(deadLetterPublisher, {
      topic: topic.full,
      subscription: options.subscription,
      keyProperty,
    }),
    ...(options.orderingKey === undefined ? {} : { orderingKey: options.orderingKey }),
  }
  const onError = options.onError ?? (() => {})
  // Opened here, so that a refused subscription (bad topic, namespace, parameter) fails the caller.
  const first = await open(url)
  const stats: PulsarConsumerStats = { rejected: 0, reconnects: 0, permits: 0 }
  const receiver = new Receiver<P>(first, core, stats, {
    open: () => open(url),
    translate: (message, socket) => toDelivery(message, socket, settings),
    deadLetter: settings.deadLetter,
    batch: options.batch ?? true,
    maxBatch: Math.max(1, Math.min(concurrency, maxBatch)),
    onError,
  })
  let closed = false
  return consumerHandle(
    core,
    stats,
    {
      done: receiver.done,
      async close() {
        closed = true
        await receiver.stop()
        await core.close()
        // Only now: the core's acks, negative acks and dead-letter acks went out on this socket.
        receiver.closeSocket()
        if (deadLetterPublisher !== false) await deadLetterPublisher.close()
      },
    },
    {
      // The subscription's backlog, asked of the admin API now: messages not yet acknowledged.
      lag: async (): Promise<number | undefined> => {
        if (closed) return undefined
        return backlog(base, topic, options.subscription, options.headers)
      },
    },
  )
}

/** The subscription's msgBacklog from the topic's stats (admin REST API on the same web service). */
async function backlog(
  base: string,
  topic: TopicName,
  subscription: string,
  headers: Readonly<Record<string, string>> | undefined,
): Promise<number | undefined> {
  const http = base.replace(/^ws/, 'http')
  const path = [topic.tenant, topic.namespace, topic.local].map(encodeURIComponent).join('/')
  const response = await fetch(`${http}/admin/v2/persistent/${path}/stats`, {
    ...(headers === undefined ? {} : { headers: { ...headers } }),
    signal: AbortSignal.timeout(DEFAULT_CONNECT_TIMEOUT_MS),
  })
  if (!response.ok) return undefined
  const stats = (await response.json()) as { subscriptions?: Record<string, { msgBacklog?: number }> }
  return stats.subscriptions?.[subscription]?.msgBacklog
}
