// The confirming producer for Kafka: idempotent (the broker drops a retried batch it already
// wrote, by producer id and sequence number), acks from every in-sync replica, the message's stable
// id in the `idem-message-id` header. It resolves only once the broker acknowledged the write.
// Publishing the same message again after a lost acknowledgement writes a second record with the
// same id: the consumer recognises it by that header.
//
// Every send on a client goes through one lane (kafka-send-lane.ts): the client loses concurrent
// idempotent writes.

import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { KafkaProducerClient, KafkaRecordToSend } from './kafka-driver.js'
import { MESSAGE_ID_HEADER } from './kafka-headers.js'
import { sendInLane } from './kafka-send-lane.js'

export interface KafkaProducerOptions {
  /**
   * A @platformatic/kafka `Producer`, yours: never closed here. Create it with `idempotent: true`;
   * each send also asks for idempotence and acks=all. A function returning one hands it to the
   * producer, which calls it on first publish and closes it in close(). Send through it only with
   * kafkaProducer (any number of them): sends of your own on the same client, concurrent with
   * these, can be dropped by the broker as duplicates (see the top of kafka-producer.ts).
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
  /**
   * How long a publish waits for the acknowledgement before it rejects with
   * PublishNotConfirmedError. An idempotent @platformatic/kafka Producer retries without end unless
   * created with `retries` above 1, so without this a publish to a broker that is down would never
   * settle. The write may still happen after the timeout (publish again with the same id). Default 30 s.
   */
  confirmTimeout?: Duration
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
  const timeoutMs = toMs(options.confirmTimeout ?? '30s', 'confirmTimeout')

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

  const send = async (records: KafkaRecordToSend[], messageId: string | undefined): Promise<void> => {
    const client = await source.get()
    await sendInLane(client, records, { messageId, timeoutMs })
  }

  return {
    publish: async (message) => send([record(message)], message.id),
    publishMany: async (messages) => {
      if (messages.length === 0) return
      const records = messages.map(record)
      await send(records, messages.length === 1 ? messages[0]?.id : undefined)
    },
    close: () => source.close((client) => client.close()),
  }
}
