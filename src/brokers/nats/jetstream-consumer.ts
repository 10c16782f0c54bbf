// consumeJetStream: a durable JetStream pull consumer (explicit acks) feeding Idem's consumer core.
// The core claims, runs, stores and only then acks; this module pulls, translates and dead-letters.

import { decodeJson } from '../../consumer/decode-json.js'
import {
  type ConsumerHandle,
  type ConsumerSource,
  type ConsumerStats,
  consumerHandle,
  resolveConsumer,
} from '../../consumer/handle.js'
import { clientOption, renamedDuration } from '../../consumer/renamed.js'
import { type Duration, positiveInteger } from '../../contract/duration.js'
import { deadLetterer } from './jetstream-dead-letter.js'
import { type DeliverySettings, toDelivery } from './jetstream-delivery.js'
import { FetchLoop } from './jetstream-fetch-loop.js'
import { type JetStreamKeySource, usesSequence } from './jetstream-keys.js'
import type { ConsumerInfoLike, JetStreamClientLike, JsMsgLike, NatsConnectionLike } from './nats-driver.js'

/** The JetStream side of consumeJetStream's options. */
export interface JetStreamSourceOptions<P> {
  /** Your NatsConnection (`await connect(…)`): yours, never closed by Idem. Its reconnects are the driver's; pulls resume on the new connection. */
  client: NatsConnectionLike
  stream: string
  /** The durable pull consumer: `ack_policy: explicit`, and `max_deliver: -1` so that Idem decides when to give up. */
  durable: string
  /**
   * The subject dead-lettered messages are copied to, with their reason in `Idem-Dead-Letter-Reason`,
   * before the original is terminated; a stream must capture it. `false`: only term() (no reason kept).
   */
  deadLetterSubject: string | false
  /** How long to wait for the dead-letter stream's PubAck. Default: the client's timeout. */
  deadLetterTimeout?: Duration
  /** @deprecated Use `deadLetterTimeout` (a Duration). */
  deadLetterTimeoutMs?: number
  /** Also pass the reason to term(): only for NATS server 2.11 and later, older ones redeliver the message. */
  termReason?: boolean
  /** The idempotency key. Default `'msgIdOrSequence'`: `Nats-Msg-Id`, else the stream sequence. */
  key?: JetStreamKeySource
  /** Payload decoding. Default: JSON in strict UTF-8 (`decodeJson`). A message that fails to decode is dead-lettered with the reason. */
  decode?: (data: Uint8Array, msg: JsMsgLike) => P
  /** Messages with the same ordering key are handled one at a time, in order. Default: the key. */
  orderingKey?: (msg: JsMsgLike) => string | undefined
  /**
   * Wait for the server to confirm each ack (`ackAck`), at most `timeout` (default: the client's);
   * an unconfirmed ack is reported as a broker_error.
   */
  doubleAck?:
    | boolean
    | {
        timeout?: Duration
        /** @deprecated Use `timeout`. */
        timeoutMs?: number
      }
  /** Messages pulled together are claimed in one store round trip (`handleBatch`). Default true. */
  batch?: boolean
  /** Most messages asked for in one pull. Default: the core's free capacity. */
  maxBatch?: number
  /** How long one pull request waits for messages (at least 1 s). Default '5s'. */
  fetchExpires?: Duration
  /** @deprecated Use `fetchExpires` (a Duration). */
  fetchExpiresMs?: number
  /** Pull failures (connection lost, consumer gone) and dead-lettering failures of undecodable messages. */
  onError?: (error: unknown) => void
}

/** consumeJetStream's options before the rename of `connection` to `client`. */
type LegacyConnection<P> = Omit<JetStreamSourceOptions<P>, 'client'> & {
  /** @deprecated Use `client`. */
  connection: NatsConnectionLike
  client?: never
}

/**
 * consumeJetStream's options: the JetStream ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a
 * ready-made `consumer`.
 */
export type ConsumeJetStreamOptions<P = unknown, Tx = unknown> = (JetStreamSourceOptions<P> | LegacyConnection<P>) &
  ConsumerSource<P, Tx>

export interface JetStreamConsumerStats extends ConsumerStats {
  /** Pull requests made. */
  pulls: number
  /** Pull requests that failed (connection lost, consumer or stream gone); each is retried. */
  pullFailures: number
  /** Messages dead-lettered before reaching the core (no usable key, payload not decodable). */
  rejected: number
}

/** @deprecated Use `JetStreamConsumerStats`. */
export type JetStreamSubscriptionStats = JetStreamConsumerStats

/** @deprecated Use `ConsumerHandle<P, Tx, JetStreamConsumerStats>` (from `idem/consumer`). */
export type JetStreamSubscription<P = unknown, Tx = unknown> = ConsumerHandle<P, Tx, JetStreamConsumerStats>

const DEFAULT_MAX_ATTEMPTS = 5
const DEFAULT_ACK_WAIT_MS = 30_000
const MIN_FETCH_EXPIRES_MS = 1000

/**
 * Consume a durable pull consumer through the idempotent consumer: per message, claim, run the
 * handler, store the outcome, and only then ack. Resolves once the consumer's settings were checked.
 *
 * @example
 * ```ts
 * import { connect } from 'nats'
 * import { consumeJetStream } from 'idem/nats'
 *
 * const nc = await connect({ servers: 'localhost:4222' })
 * const orders = await consumeJetStream<Order>({
 *   client: nc,
 *   stream: 'ORDERS',
 *   durable: 'billing',
 *   deadLetterSubject: 'orders.dead',
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 *   on: { settled: (result) => console.log(result.key, result.outcome) },
 * })
 * // on shutdown:
 * await orders.close()
 * ```
 */
export async function consumeJetStream<P = unknown, Tx = unknown>(
  options: ConsumeJetStreamOptions<P, Tx>,
): Promise<ConsumerHandle<P, Tx, JetStreamConsumerStats>> {
  const where = 'consumeJetStream'
  const nc = clientOption<NatsConnectionLike>(options, 'connection', where, 'a NatsConnection (await connect(…))')
  const deadLetterTimeoutMs = renamedDuration(options, 'deadLetterTimeout', 'deadLetterTimeoutMs', where)
  const expiresMs = renamedDuration(options, 'fetchExpires', 'fetchExpiresMs', where, '', 5000)
  if (expiresMs < MIN_FETCH_EXPIRES_MS) throw new RangeError(`fetchExpires must be at least 1s, got ${expiresMs} ms`)
  const maxBatch =
    options.maxBatch === undefined ? Number.POSITIVE_INFINITY : positiveInteger(options.maxBatch, 'maxBatch')
  const doubleAck =
    options.doubleAck === undefined || options.doubleAck === false
      ? false
      : options.doubleAck === true
        ? {}
        : { timeoutMs: renamedDuration(options.doubleAck, 'timeout', 'timeoutMs', where, 'doubleAck.') }
  const { core, options: consumerOptions } = resolveConsumer(options, where)
  const js = nc.jetstream()
  const pull = await js.consumers.get(options.stream, options.durable)
  // A ready-made consumer tells its maxAttempts; options give it or take the default.
  const maxAttempts =
    consumerOptions === undefined ? core.maxAttempts : (consumerOptions.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
  const { ackWaitMs } = checkConsumer(await pull.info(), maxAttempts)
  const keySource = options.key ?? 'msgIdOrSequence'
  const epoch = () => (usesSequence(keySource) ? streamEpoch(js, options.stream) : Promise.resolve(0))
  const settings: DeliverySettings<P> = {
    key: keySource,
    streamEpoch: await epoch(),
    decode: options.decode ?? (decodeJson as (data: Uint8Array) => P),
    // A third of ack_wait: two working() calls can be lost before JetStream redelivers.
    extendEveryMs: Math.max(100, Math.floor(ackWaitMs / 3)),
    doubleAck: doubleAck === false ? false : doubleAck.timeoutMs === undefined ? {} : doubleAck,
    deadLetter: deadLetterer(js, {
      subject: options.deadLetterSubject,
      ...(deadLetterTimeoutMs === undefined ? {} : { timeout: deadLetterTimeoutMs }),
      ...(options.termReason === undefined ? {} : { termReason: options.termReason }),
    }),
    ...(options.orderingKey === undefined ? {} : { orderingKey: options.orderingKey }),
  }
  const onError = options.onError ?? (() => {})
  const stats: JetStreamConsumerStats = { pulls: 0, pullFailures: 0, rejected: 0 }
  const loop = new FetchLoop(pull, core, stats, {
    translate: (msg) => toDelivery(msg, settings),
    deadLetter: settings.deadLetter,
    batch: options.batch ?? true,
    maxBatch,
    expiresMs,
    onError,
    isClosed: () => nc.isClosed(),
    // A stream deleted and created again restarts its sequence numbers: re-read its creation time.
    recover: async () => {
      settings.streamEpoch = await epoch()
    },
  })
  let closed = false
  return consumerHandle(
    core,
    stats,
    {
      done: loop.done,
      async close() {
        closed = true
        await loop.stop()
        await core.close()
        // ack() only queues a frame: make sure the acks of finished work left this process.
        if (!nc.isClosed()) await nc.flush().catch(onError)
      },
    },
    {
      // The consumer's num_pending, asked of the server now (info() uncached): messages not yet
      // delivered to the durable. Not num_ack_pending: those were delivered (in handlers here or
      // in other members, or waiting out a nak delay) and are the core's inFlight, not a backlog.
      lag: async (): Promise<number | undefined> => {
        if (closed || nc.isClosed()) return undefined
        return (await pull.info(false)).num_pending
      },
    },
  )
}

/** The consumer's ack_wait in ms, after checking the settings Idem relies on. */
export function checkConsumer(info: ConsumerInfoLike, maxAttempts: number): { ackWaitMs: number } {
  const { ack_policy, ack_wait, max_deliver } = info.config
  const name = `JetStream consumer "${info.name}" on stream "${info.stream_name}"`
  if (ack_policy !== 'explicit') {
    throw new TypeError(
      `${name} has ack_policy "${ack_policy}": Idem acknowledges each message itself and needs "explicit"`,
    )
  }
  if (max_deliver !== undefined && max_deliver > 0 && max_deliver <= maxAttempts) {
    // At max_deliver JetStream stops delivering but keeps the message unacknowledged: nobody would dead-letter it.
    throw new RangeError(
      `${name} has max_deliver ${max_deliver}, not above maxAttempts (${maxAttempts}): JetStream would stop ` +
        'delivering a failing message before Idem dead-letters it; set max_deliver to -1',
    )
  }
  return { ackWaitMs: ack_wait !== undefined && ack_wait > 0 ? ack_wait / 1e6 : DEFAULT_ACK_WAIT_MS }
}

/** The stream's creation time in ms: it tells a re-created stream's sequence numbers from the old ones'. */
async function streamEpoch(js: JetStreamClientLike, stream: string): Promise<number> {
  const info = await (await js.streams.get(stream)).info()
  const ms = Date.parse(info.created)
  if (!Number.isFinite(ms)) throw new TypeError(`stream "${stream}" reports no creation time (${info.created})`)
  return ms
}
