// The confirming producer for Kafka: idempotent (the broker drops a retried batch it already
// wrote, by producer id and sequence number), acks from every in-sync replica, the message's stable
// id in the `idem-message-id` header. It resolves only once the broker acknowledged the write.
// Publishing the same message again after a lost acknowledgement writes a second record with the
// same id: the consumer recognises it by that header.

import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { KafkaProducerClient, KafkaRecordToSend } from './kafka-driver.js'
import { MESSAGE_ID_HEADER } from './kafka-headers.js'

export interface KafkaProducerOptions {
  /**
   * A @platformatic/kafka `Producer`, yours: never closed here. Create it with `idempotent: true`;
   * each send also asks for idempotence and acks=all. A function returning one hands it to the
   * producer, which calls it on first publish and closes it in close().
   */
  client: ClientOption<KafkaProducerClient>
  /** The topic messages go to when a message names no `destination`. */
  topic: string
  /** The record key (it picks the partition, and so the order): e.g. the account a payment is for. Default: none. */
  recordKey?: (message: OutgoingMessage) => string | Buffer | undefined
  /** Payload to record value. Default `JSON.stringify`. */
  encode?: (payload: unknown) => string | Buffer
  /** The header carrying the message id; the consumer's `keyHeader`. Default 'idem-message-id'. */
  idHeader?: string
}

export interface KafkaProducer extends Producer {
  /** Write the message and resolve once every in-sync replica has it; reject with PublishNotConfirmedError otherwise. */
  publish(message: OutgoingMessage): Promise<void>
  /** The same for many messages, in one request per broker; resolves once all were acknowledged. */
  publishMany(messages: readonly OutgoingMessage[]): Promise<void>
  /** Closes the client only if a factory made it. */
  close(): Promise<void>
}

/**
 * A producer whose publish resolves only on the broker's acknowledgement, with the message id in a header.
 *
 * @example
 * ```ts
 * import { Producer } from '@platformatic/kafka'
 * import { newMessageId } from 'idem/producer'
 * import { kafkaProducer } from 'idem/kafka'
 *
 * const client = new Producer({ clientId: 'checkout', bootstrapBrokers: ['127.0.0.1:9092'], idempotent: true })
 * const payments = kafkaProducer({ client, topic: 'payments', recordKey: (m) => (m.payload as Payment).account })
 * const id = newMessageId() // once per logical message: a retry reuses it
 * await payments.publish({ id, payload: { account: 'a-1', plan: 'yearly' } })
 * ```
 */
export function kafkaProducer(options: KafkaProducerOptions): KafkaProducer {
  const source = new ProducerClient(options?.client, 'kafkaProducer', 'a @platformatic/kafka Producer')
  if (typeof options.topic !== 'string' || options.topic === '') {
    throw new TypeError('kafkaProducer needs { topic }: the topic messages without a destination go to')
  }
  const idHeader = options.idHeader ?? MESSAGE_ID_HEADER
  const encode = options.encode ?? JSON.stringify
  const recordKey = options.recordKey

  const record = (message: OutgoingMessage): KafkaRecordToSend => {
    const id = validateKey(message.id, 'key')
    const encoded = encode(message.payload)
    if (typeof encoded !== 'string' && !Buffer.isBuffer(encoded)) {
      throw new TypeError(`encode must return a string or a Buffer for message ${id}`)
    }
    const headers = new Map<Buffer, Buffer>([[Buffer.from(idHeader), Buffer.from(id)]])
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      if (name === idHeader) throw new TypeError(`header "${name}" would overwrite the message id`)
      headers.set(Buffer.from(name), Buffer.from(value))
    }
    const key = recordKey?.(message)
    return {
      topic: message.destination ?? options.topic,
      key: key === undefined ? undefined : Buffer.isBuffer(key) ? key : Buffer.from(key),
      value: Buffer.isBuffer(encoded) ? encoded : Buffer.from(encoded),
      headers,
    }
  }

  const send = async (messages: KafkaRecordToSend[], messageId?: string): Promise<void> => {
    const client = await source.get()
    try {
      await client.send({ messages, idempotent: true, acks: -1 })
    } catch (error) {
      throw new PublishNotConfirmedError(`Kafka did not acknowledge the write: ${messageOf(error)}`, {
        messageId,
        cause: error,
      })
    }
  }

  return {
    publish: (message) => send([record(message)], message.id),
    publishMany: (messages) => (messages.length === 0 ? Promise.resolve() : send(messages.map(record))),
    close: () => source.close((client) => client.close()),
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
