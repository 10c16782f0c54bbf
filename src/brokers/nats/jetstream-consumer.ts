// consumeJetStream: a durable JetStream pull consumer (explicit acks) feeding Idem's consumer core.
// The core claims, runs, stores and only then acks; this module pulls, translates and dead-letters.

import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { ConsumerOptions } from '../../consumer/types.js'
import { deadLetterer } from './jetstream-dead-letter.js'
import { type DeliverySettings, decodeJson, toDelivery } from './jetstream-delivery.js'
import { FetchLoop } from './jetstream-fetch-loop.js'
import { type JetStreamKeySource, usesSequence } from './jetstream-keys.js'
import type { ConsumerInfoLike, JetStreamClientLike, JsMsgLike, NatsConnectionLike } from './nats-driver.js'

export interface ConsumeJetStreamOptions<P, Tx = unknown> {
  /** Your NatsConnection. Its reconnects are the driver's; pulls resume on the new connection. */
  connection: NatsConnectionLike
  /** The core, or its options (run mode or transaction mode). */
  consumer: IdempotentConsumer<P, Tx> | ConsumerOptions<P, Tx>
  stream: string
  /** The durable pull consumer: `ack_policy: explicit`, and `max_deliver: -1` so that Idem decides when to give up. */
  durable: string
  /**
   * The subject dead-lettered messages are copied to, with their reason in `Idem-Dead-Letter-Reason`,
   * before the original is terminated; a stream must capture it. `false`: only term() (no reason kept).
   */
  deadLetterSubject: string | false
  /** How long to wait for the dead-letter stream's PubAck, in ms. Default: the client's timeout. */
  deadLetterTimeoutMs?: number
  /** Also pass the reason to term(): only for NATS server 2.11 and later, older ones redeliver the message. */
  termReason?: boolean
  /** The idempotency key. Default `'msgIdOrSequence'`: `Nats-Msg-Id`, else the stream sequence. */
  key?: JetStreamKeySource
  /** Payload decoding. Default: UTF-8 JSON. A message that fails to decode is dead-lettered. */
  decode?: (data: Uint8Array, msg: JsMsgLike) => P
  /** Messages with the same ordering key are handled one at a time, in order. Default: the key. */
  orderingKey?: (msg: JsMsgLike) => string | undefined
  /** Wait for the server to confirm each ack (`ackAck`); an unconfirmed ack is reported as a broker_error. */
  doubleAck?: boolean | { timeoutMs: number }
  /** Messages pulled together are claimed in one store round trip (`handleBatch`). Default true. */
  batch?: boolean
  /** Most messages asked for in one pull. Default: the core's free capacity. */
  maxBatch?: number
  /** How long one pull request waits for messages, in ms (at least 1000). Default 5000. */
  fetchExpiresMs?: number
  /** Pull failures (connection lost, consumer gone) and dead-lettering failures of undecodable messages. */
  onError?: (error: unknown) => void
}

export interface JetStreamSubscriptionStats {
  /** Pull requests made. */
  pulls: number
  /** Pull requests that failed (connection lost, consumer or stream gone); each is retried. */
  pullFailures: number
  /** Messages dead-lettered before reaching the core (no usable key, payload not decodable). */
  rejected: number
}

export interface JetStreamSubscription<P = unknown, Tx = unknown> {
  /** The core this subscription feeds: its events, inFlight and capacity. */
  readonly consumer: IdempotentConsumer<P, Tx>
  readonly stats: Readonly<JetStreamSubscriptionStats>
  /** Stop pulling, then close the core: in-flight handlers finish (or are handed back), nothing unfinished is acked. */
  close(): Promise<void>
  /** Resolves when pulling stopped: after close(), or once the connection closed for good. */
  readonly done: Promise<void>
}

const DEFAULT_MAX_ATTEMPTS = 5
const DEFAULT_ACK_WAIT_MS = 30_000

/** Consume the durable pull consumer through the idempotent consumer; resolves once its settings were checked. */
export async function consumeJetStream<P = unknown, Tx = unknown>(
  options: ConsumeJetStreamOptions<P, Tx>,
): Promise<JetStreamSubscription<P, Tx>> {
  const nc = options.connection
  const js = nc.jetstream()
  const pull = await js.consumers.get(options.stream, options.durable)
  const given = options.consumer as IdempotentConsumer<P, Tx>
  const isCore = typeof given.handle === 'function'
  // An IdempotentConsumer instance tells its maxAttempts; options give it or take the default.
  const maxAttempts =
    (isCore ? given.maxAttempts : (options.consumer as ConsumerOptions<P, Tx>).maxAttempts) ?? DEFAULT_MAX_ATTEMPTS
  const { ackWaitMs } = checkConsumer(await pull.info(), maxAttempts)
  const keySource = options.key ?? 'msgIdOrSequence'
  const epoch = () => (usesSequence(keySource) ? streamEpoch(js, options.stream) : Promise.resolve(0))
  const doubleAck = options.doubleAck ?? false
  const settings: DeliverySettings<P> = {
    key: keySource,
    streamEpoch: await epoch(),
    decode: options.decode ?? (decodeJson as (data: Uint8Array) => P),
    // A third of ack_wait: two working() calls can be lost before JetStream redelivers.
    extendEveryMs: Math.max(100, Math.floor(ackWaitMs / 3)),
    doubleAck: doubleAck === true ? {} : doubleAck,
    deadLetter: deadLetterer(js, {
      subject: options.deadLetterSubject,
      ...(options.deadLetterTimeoutMs === undefined ? {} : { timeoutMs: options.deadLetterTimeoutMs }),
      ...(options.termReason === undefined ? {} : { termReason: options.termReason }),
    }),
    ...(options.orderingKey === undefined ? {} : { orderingKey: options.orderingKey }),
  }
  const core = isCore ? given : new IdempotentConsumer<P, Tx>(options.consumer as ConsumerOptions<P, Tx>)
  const onError = options.onError ?? (() => {})
  const stats: JetStreamSubscriptionStats = { pulls: 0, pullFailures: 0, rejected: 0 }
  const loop = new FetchLoop(pull, core, stats, {
    translate: (msg) => toDelivery(msg, settings),
    deadLetter: settings.deadLetter,
    batch: options.batch ?? true,
    maxBatch: options.maxBatch ?? Number.POSITIVE_INFINITY,
    expiresMs: options.fetchExpiresMs ?? 5000,
    onError,
    isClosed: () => nc.isClosed(),
    // A stream deleted and created again restarts its sequence numbers: re-read its creation time.
    recover: async () => {
      settings.streamEpoch = await epoch()
    },
  })
  let closing: Promise<void> | undefined
  return {
    consumer: core,
    stats,
    done: loop.done,
    close() {
      closing ??= (async () => {
        await loop.stop()
        await core.close()
        // ack() only queues a frame: make sure the acks of finished work left this process.
        if (!nc.isClosed()) await nc.flush().catch(onError)
      })()
      return closing
    },
  }
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
