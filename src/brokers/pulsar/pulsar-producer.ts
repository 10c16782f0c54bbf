// pulsarProducer: every message is sent with its id in the `idem-key` property (the caller's id, or
// one generated once) and counts as sent only when the broker's reply says `ok` with the stored
// message's id. Pulsar keeps a resent copy as a second message (its deduplication works on a
// producer's sequence ids, which the WebSocket producer cannot tie to an application message), so
// the consumer's Idem record, keyed by the property, is what recognises the duplicate.

import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { newMessageId } from '../../producer/message-id.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { SocketOpener } from './pulsar-driver.js'
import { KEY_PROPERTY } from './pulsar-keys.js'
import { Publisher } from './pulsar-publisher.js'
import { webSocketOpener } from './pulsar-socket.js'
import { parseServiceUrl, parseTopic, producerUrl } from './pulsar-topic.js'

export interface PulsarProducerOptions {
  /** The web service's WebSocket address, e.g. 'ws://127.0.0.1:8080'. */
  url: string
  /** The topic of messages that name no `destination`. */
  topic?: string
  /** Payload encoding. Default: UTF-8 JSON. */
  encode?: (payload: unknown) => Uint8Array
  /** How long to wait for each reply. Default '30s' (the WebSocket producer's own send timeout). */
  confirmTimeout?: Duration
  /** The message key (partition and Key_Shared routing, compaction). Default: none. */
  messageKey?: (message: PulsarMessageToSend) => string | undefined
  /** HTTP headers of the WebSocket handshake, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Readonly<Record<string, string>>
  /** @internal Opens the sockets (tests hand in a double). Default: the `ws` package. */
  openSocket?: SocketOpener
}

/** A message for `send`: with the id to reuse, or without one to have it generated (once). */
export type PulsarMessageToSend<P = unknown> = OutgoingMessage<P> | (Omit<OutgoingMessage<P>, 'id'> & { id?: string })

export interface PulsarSendReceipt {
  /** The message id (the `idem-key` property): keep it to send the same message again safely. */
  id: string
  /** `persistent://tenant/namespace/topic`. */
  topic: string
  /** The broker's id of the stored message (base64 of its MessageIdData). */
  messageId: string
}

export interface PulsarProducer extends Producer {
  /** The Producer contract: resolves once the broker confirmed the message. */
  publish(message: PulsarMessageToSend): Promise<void>
  /** `publish`, telling which id was used and where the message is stored. */
  send(message: PulsarMessageToSend): Promise<PulsarSendReceipt>
  /** Close the producer sockets; sends waiting for a reply fail. */
  close(): Promise<void>
}

const DEFAULT_TIMEOUT_MS = 30_000

/**
 * A producer over Pulsar's WebSocket API that sends every message with a stable id and resolves
 * once the broker stored it. A send that is not confirmed rejects with `PublishNotConfirmedError`:
 * the message may or may not be stored, and sending it again with the same id is safe.
 *
 * @example
 * const producer = pulsarProducer({ url: 'ws://127.0.0.1:8080', topic: 'orders' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 */
export function pulsarProducer(options: PulsarProducerOptions): PulsarProducer {
  const where = 'pulsarProducer'
  if (options === null || typeof options !== 'object') throw new TypeError(`${where} needs an options object`)
  const base = parseServiceUrl(options.url, where)
  const defaultTopic = options.topic === undefined ? undefined : parseTopic(options.topic)
  const timeoutMs =
    options.confirmTimeout === undefined ? DEFAULT_TIMEOUT_MS : toMs(options.confirmTimeout, 'confirmTimeout')
  const encode = options.encode ?? ((payload: unknown) => new TextEncoder().encode(JSON.stringify(payload)))
  const open =
    options.openSocket ??
    webSocketOpener({
      handshakeTimeoutMs: timeoutMs,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    })
  // One socket per topic, opened on its first message.
  const publishers = new Map<string, Publisher>()
  let closed = false
  const send = async (message: PulsarMessageToSend): Promise<PulsarSendReceipt> => {
    const id = validateKey(message.id ?? newMessageId())
    if (closed) throw new PublishNotConfirmedError('the Pulsar producer is closed', { messageId: id })
    const topic = message.destination === undefined ? defaultTopic : parseTopic(message.destination, 'destination')
    if (topic === undefined) throw new TypeError(`message "${id}" has no destination and the producer no default topic`)
    let publisher = publishers.get(topic.full)
    if (publisher === undefined) {
      publisher = new Publisher(producerUrl(base, topic, { sendTimeoutMillis: String(timeoutMs) }), open, timeoutMs)
      publishers.set(topic.full, publisher)
    }
    const key = options.messageKey?.(message)
    const confirmed = await publisher.send(
      {
        payload: Buffer.from(encode(message.payload)).toString('base64'),
        // The id last: a header of the same name cannot replace it.
        properties: { ...message.headers, [KEY_PROPERTY]: id },
        ...(key === undefined ? {} : { key }),
      },
      id,
    )
    return { id, topic: topic.full, messageId: confirmed.messageId }
  }
  return {
    send,
    async publish(message) {
      await send(message)
    },
    async close() {
      closed = true
      const all = [...publishers.values()]
      publishers.clear()
      await Promise.all(all.map((publisher) => publisher.close()))
    },
  }
}
