// jetStreamProducer: every message is published with a msgID (the caller's id, or one generated
// once) and counts as sent only when the stream's PubAck came back. A retry reuses the msgID, so
// the stream's duplicate window (`duplicate_window`, 2 minutes by default) drops a copy a lost
// PubAck made us send twice, and reports it as `duplicate: true`, which is success here. Copies
// further apart than the window are both stored; the consumer's Idem record catches those.

import { setTimeout as sleep } from 'node:timers/promises'
import { warnDeprecated } from '../../contract/deprecation.js'
import { type Duration, positiveInteger, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import { newMessageId } from '../../producer/message-id.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { JetStreamClientLike, NatsConnectionLike } from './nats-driver.js'
import { natsHeaders } from './nats-headers.js'

export interface JetStreamProducerOptions {
  /**
   * A NATS connection (the producer publishes through its `jetstream()`) or a JetStream client,
   * yours: the producer never closes it. A function returning a connection hands it to the
   * producer, which calls it on first publish and closes it in close().
   */
  client: ClientOption<NatsConnectionLike | JetStreamClientLike>
  /** The subject of messages that name no `destination`. */
  subject?: string
  /** Payload encoding. Default: UTF-8 JSON. */
  encode?: (payload: unknown) => Uint8Array
  /** How long to wait for each PubAck. Default: the client's timeout (5 s). */
  confirmTimeout?: Duration
  /** @deprecated Use `confirmTimeout` (a Duration: milliseconds or a string like '5s'). */
  timeoutMs?: number
  /** Publishes tried, with the same msgID, while no PubAck comes (timeout, no stream leader yet). Default 3. */
  attempts?: number
  /** Delay before the first retry, doubling after. Default 250 ms. */
  retryDelay?: Duration
  /** @deprecated Use `retryDelay` (a Duration: milliseconds or a string like '250ms'). */
  retryDelayMs?: number
  /** Fail unless this stream stores the message (`Nats-Expected-Stream`). */
  expectStream?: string
}

/** A message for `publish`: with the id to reuse, or without one to have it generated (once). */
export type JetStreamMessage<P = unknown> = OutgoingMessage<P> | (Omit<OutgoingMessage<P>, 'id'> & { id?: string })

export interface PublishReceipt {
  /** The message id (the msgID): keep it to publish the same message again safely. */
  id: string
  stream: string
  seq: number
  /** The stream already held this id within its duplicate window; this copy was not stored. */
  duplicate: boolean
}

export interface JetStreamProducer extends Producer {
  /** The Producer contract: resolves once the stream confirmed the message (or already held its id). */
  publish(message: JetStreamMessage): Promise<void>
  /** `publish`, telling which id was used, where the message is stored, and whether it was a duplicate. */
  send(message: JetStreamMessage): Promise<PublishReceipt>
  /** Closes the connection only if a factory made it. */
  close(): Promise<void>
}

/** Errors after which the message may or may not be stored: publishing again under the same id is safe. */
const RETRIABLE = new Set(['TIMEOUT', '503', 'DISCONNECT', 'REQUEST_ERROR'])

/** What `client` may be, for the TypeError that says so. */
const NEEDS = 'a NATS connection or its JetStream client'

/**
 * A producer that publishes every message with a msgID and resolves once the stream's PubAck came
 * back (a duplicate within the stream's window counts as sent).
 *
 * @example
 * const nc = await connect({ servers: 'localhost:4222' })
 * const producer = jetStreamProducer({ client: nc, subject: 'orders.created' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 */
export function jetStreamProducer(options: JetStreamProducerOptions): JetStreamProducer
/** @deprecated Pass one options object: `jetStreamProducer({ client, ...options })`. */
export function jetStreamProducer(
  js: JetStreamClientLike,
  options?: Omit<JetStreamProducerOptions, 'client'>,
): JetStreamProducer
export function jetStreamProducer(
  first: JetStreamProducerOptions | JetStreamClientLike,
  second: Omit<JetStreamProducerOptions, 'client'> = {},
): JetStreamProducer {
  let options: JetStreamProducerOptions
  if (isClient(first)) {
    warnDeprecated('jetStreamProducer(js, options)', 'jetStreamProducer({ client, ...options })')
    options = { ...second, client: first }
  } else {
    options = first
  }
  const source = new ProducerClient(options?.client, 'jetStreamProducer', NEEDS)
  let js: JetStreamClientLike | undefined
  const client = async (): Promise<JetStreamClientLike> => {
    if (js !== undefined) return js
    const c: unknown = await source.get()
    if (!isClient(c)) throw new TypeError(`jetStreamProducer: client must be ${NEEDS}`)
    const made = 'jetstream' in c && typeof c.jetstream === 'function' ? c.jetstream() : (c as JetStreamClientLike)
    js = made
    return made
  }
  if (!source.owned && !isClient(options.client)) throw new TypeError(`jetStreamProducer: client must be ${NEEDS}`)
  const encode = options.encode ?? ((payload: unknown) => new TextEncoder().encode(JSON.stringify(payload)))
  const attempts = positiveInteger(options.attempts ?? 3, 'attempts')
  if (options.timeoutMs !== undefined) {
    warnDeprecated('jetStreamProducer({ timeoutMs })', 'jetStreamProducer({ confirmTimeout })')
  }
  if (options.retryDelayMs !== undefined) {
    warnDeprecated('jetStreamProducer({ retryDelayMs })', 'jetStreamProducer({ retryDelay })')
  }
  const timeoutMs =
    options.confirmTimeout === undefined ? options.timeoutMs : toMs(options.confirmTimeout, 'confirmTimeout')
  const retryDelayMs =
    options.retryDelay === undefined ? (options.retryDelayMs ?? 250) : toMs(options.retryDelay, 'retryDelay')
  const send = async (message: JetStreamMessage): Promise<PublishReceipt> => {
    const id = validateKey(message.id ?? newMessageId())
    const subject = message.destination ?? options.subject
    if (subject === undefined)
      throw new TypeError(`message "${id}" has no destination and the producer no default subject`)
    const data = encode(message.payload)
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await (await client()).publish(subject, data, {
          msgID: id,
          // Fresh headers each time: the client adds the msgID header to the object it is given.
          ...(message.headers === undefined ? {} : { headers: natsHeaders(message.headers) }),
          ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
          ...(options.expectStream === undefined ? {} : { expect: { streamName: options.expectStream } }),
        })
        return { id, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code
        if (attempt >= attempts || typeof code !== 'string' || !RETRIABLE.has(code)) throw error
        await sleep(retryDelayMs * 2 ** (attempt - 1))
      }
    }
  }
  return {
    send,
    async publish(message) {
      await send(message)
    },
    close: () => source.close((c) => (c as { close?(): Promise<void> }).close?.()),
  }
}

/** A NATS connection or a JetStream client, as opposed to an options object. */
function isClient(value: unknown): value is NatsConnectionLike | JetStreamClientLike {
  const c = value as Partial<NatsConnectionLike & JetStreamClientLike> | null | undefined
  return typeof c?.jetstream === 'function' || typeof c?.publish === 'function'
}
