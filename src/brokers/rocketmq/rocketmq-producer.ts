// rocketMQProducer: every message is sent with its Idem key as a user property (`idem-key`) and as
// a message key, and counts as sent only once the broker stored it (the SendReceipt). RocketMQ keeps
// no dedup window of its own: a retry after a lost receipt stores a second copy under the same key,
// which the consumer's Idem record recognises.

import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import { newMessageId } from '../../producer/message-id.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { RocketMQOutgoingLike, RocketMQProducerLike } from './rocketmq-producer-driver.js'

/** The user property that carries the Idem key: the consumer's default key source. */
export const KEY_PROPERTY = 'idem-key'

export interface RocketMQProducerOptions {
  /**
   * A started `Producer` (yours: never shut down here), or a function returning one, which the
   * producer calls on first send and shuts down in close().
   */
  client: ClientOption<RocketMQProducerLike>
  /** The topic of messages that name no `destination`. */
  topic?: string
  /** A tag on every message (consumers can filter on it). */
  tag?: string
  /** Payload encoding. Default: UTF-8 JSON. */
  encode?: (payload: unknown) => Buffer
}

/** A message for `send`: with the id to reuse, or without one to have it generated (once). */
export type RocketMQMessage<P = unknown> = (OutgoingMessage<P> | (Omit<OutgoingMessage<P>, 'id'> & { id?: string })) & {
  /** This message's tag, instead of the producer's. */
  tag?: string
  /** FIFO topics: messages of one group are delivered in order. */
  messageGroup?: string
}

export interface RocketMQSendReceipt {
  /** The Idem key (the `idem-key` property): keep it to send the same message again safely. */
  id: string
  /** The broker's message id of this copy. */
  messageId: string
}

export interface RocketMQProducer extends Producer {
  /** The Producer contract: resolves once the broker stored the message. */
  publish(message: RocketMQMessage): Promise<void>
  /** `publish`, telling which id was used and the broker's message id. */
  send(message: RocketMQMessage): Promise<RocketMQSendReceipt>
  /** Shuts the client down only if a factory made it. */
  close(): Promise<void>
}

const NEEDS = 'a started RocketMQ Producer (rocketmq-client-nodejs)'

/**
 * A producer whose every message carries its Idem key and counts as sent once the broker stored it.
 *
 * @example
 * const client = new Producer({ endpoints: '127.0.0.1:8081' })
 * await client.startup()
 * const producer = rocketMQProducer({ client, topic: 'orders' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 */
export function rocketMQProducer(options: RocketMQProducerOptions): RocketMQProducer {
  const source = new ProducerClient(options?.client, 'rocketMQProducer', NEEDS)
  if (!source.owned && !isProducer(options.client)) throw new TypeError(`rocketMQProducer: client must be ${NEEDS}`)
  const encode = options.encode ?? encodeJson
  const send = async (message: RocketMQMessage): Promise<RocketMQSendReceipt> => {
    const outgoing = toOutgoing(message, { topic: options.topic, tag: options.tag, encode }, 'rocketMQProducer')
    const id = outgoing.keys[0] as string
    let client: RocketMQProducerLike
    try {
      client = await source.get()
    } catch (error) {
      throw error instanceof PublishNotConfirmedError
        ? error
        : new PublishNotConfirmedError(`no RocketMQ producer to send "${id}"`, { messageId: id, cause: error })
    }
    try {
      const receipt = await client.send(outgoing)
      return { id, messageId: receipt.messageId }
    } catch (error) {
      throw new PublishNotConfirmedError(`RocketMQ did not confirm "${id}" on topic "${outgoing.topic}"`, {
        messageId: id,
        cause: error,
      })
    }
  }
  return {
    send,
    async publish(message) {
      await send(message)
    },
    close: () => source.close((c) => c.shutdown?.()),
  }
}

export interface OutgoingSettings {
  topic: string | undefined
  tag: string | undefined
  encode: (payload: unknown) => Buffer
}

/** `message` as the driver sends it, the Idem key first among its keys. Throws on a bad message. */
export function toOutgoing(
  message: RocketMQMessage,
  settings: OutgoingSettings,
  where: string,
  extra: Readonly<Record<string, string>> = {},
): RocketMQOutgoingLike & { keys: string[]; properties: Map<string, string> } {
  if (message === null || typeof message !== 'object') throw new TypeError(`${where}: a message must be an object`)
  const id = validateKey(message.id ?? newMessageId())
  const topic = message.destination ?? settings.topic
  if (topic === undefined) throw new TypeError(`${where}: message "${id}" has no destination and no default topic`)
  const properties = new Map<string, string>(Object.entries(message.headers ?? {}))
  properties.set(KEY_PROPERTY, id)
  for (const [name, value] of Object.entries(extra)) properties.set(name, value)
  const tag = message.tag ?? settings.tag
  return {
    topic,
    body: settings.encode(message.payload),
    keys: [id],
    properties,
    ...(tag === undefined ? {} : { tag }),
    ...(message.messageGroup === undefined ? {} : { messageGroup: message.messageGroup }),
  }
}

export function encodeJson(payload: unknown): Buffer {
  const text = JSON.stringify(payload)
  if (text === undefined)
    throw new TypeError('the payload cannot be encoded as JSON (undefined, a function or a symbol)')
  return Buffer.from(text, 'utf8')
}

function isProducer(value: unknown): value is RocketMQProducerLike {
  const c = value as Partial<RocketMQProducerLike> | null | undefined
  return typeof c?.send === 'function' && typeof c?.beginTransaction === 'function'
}
