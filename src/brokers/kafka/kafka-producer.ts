// The confirming producer for Kafka: idempotent (the broker drops a retried batch it already
// wrote, by producer id and sequence number), acks from every in-sync replica, the message's stable
// id in the `idem-message-id` header. It resolves only once the broker acknowledged the write.
// Publishing the same message again after a lost acknowledgement writes a second record with the
// same id: the consumer recognises it by that header.
//
// Why every send on a client goes through one lane (@platformatic/kafka 1.35, checked against
// Kafka 4.1): the client numbers an idempotent batch from its per-partition sequence when it builds
// the request and advances the sequence only when the response comes back. Two sends in flight to
// one partition therefore carry the same sequence number; the broker takes the second for a retry
// of the first, drops it and answers success with the first one's offset: 20 concurrent sends, all
// resolved, one record written. The same happens after a send that failed although the broker wrote
// it (the acknowledgement was lost): the sequence did not advance, and the next message, numbered
// like the lost one, is dropped as its duplicate. So sends on a client run one at a time (those that
// queue meanwhile go together in the next request, in call order), and after a failed send the
// client takes a new producer id before the next one, which starts its sequences afresh.

import { type Duration, toMs } from '../../contract/duration.js'
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

/** The driver's producer and the one call the lane adds: a new producer id, which restarts every sequence. */
interface RenewableClient extends KafkaProducerClient {
  initIdempotentProducer?(options: { producerId?: bigint; producerEpoch?: number }): Promise<unknown>
}

/** -1/-1: "a new producer", not "bump the epoch of producer 0" (what the client sends when given nothing). */
const NEW_PRODUCER = { producerId: -1n, producerEpoch: -1 }

/** Records queued together are sent together; one request carries at most this many (a publishMany is never split). */
const MAX_RECORDS_PER_SEND = 1000

interface Queued {
  readonly records: KafkaRecordToSend[]
  readonly messageId: string | undefined
  /** Set once the caller has its answer (acknowledged, failed or timed out): a queued one is then not sent. */
  settled: boolean
  resolve(): void
  reject(error: unknown): void
}

/** One client's sends, one request at a time. */
class SendLane {
  readonly #client: RenewableClient
  readonly #queue: Queued[] = []
  #running = false
  /** A send failed: records of it may be on the broker, so the client needs a new producer id first. */
  #renew = false

  constructor(client: RenewableClient) {
    this.#client = client
  }

  enqueue(entry: Queued): void {
    this.#queue.push(entry)
    if (!this.#running) void this.#drain()
  }

  async #drain(): Promise<void> {
    this.#running = true
    try {
      while (this.#queue.length > 0) {
        const batch = this.#take()
        if (batch.length === 0) continue
        try {
          if (this.#renew && typeof this.#client.initIdempotentProducer === 'function') {
            await this.#client.initIdempotentProducer(NEW_PRODUCER)
          }
          this.#renew = false
          await this.#client.send({ messages: batch.flatMap((entry) => entry.records), idempotent: true, acks: -1 })
          for (const entry of batch) settle(entry, undefined)
        } catch (error) {
          this.#renew = true
          for (const entry of batch) settle(entry, notConfirmed(error, entry.messageId))
        }
      }
    } finally {
      this.#running = false
    }
  }

  /** The next entries still waiting for an answer, in call order, up to MAX_RECORDS_PER_SEND records. */
  #take(): Queued[] {
    const batch: Queued[] = []
    let records = 0
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as Queued
      if (next.settled) {
        this.#queue.shift()
        continue
      }
      if (batch.length > 0 && records + next.records.length > MAX_RECORDS_PER_SEND) break
      this.#queue.shift()
      batch.push(next)
      records += next.records.length
    }
    return batch
  }
}

const lanes = new WeakMap<object, SendLane>()

/**
 * Send `records` through `client`'s lane (shared by every caller in this process that sends with
 * it) and resolve once the broker acknowledged them; reject with PublishNotConfirmedError when it
 * did not, or not within `timeoutMs`. For any idempotent send on a client others send with too.
 */
export function sendInLane(
  client: KafkaProducerClient,
  records: KafkaRecordToSend[],
  options: { messageId?: string | undefined; timeoutMs: number },
): Promise<void> {
  let lane = lanes.get(client)
  if (lane === undefined) {
    lane = new SendLane(client)
    lanes.set(client, lane)
  }
  const { messageId, timeoutMs } = options
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      settle(
        entry,
        new PublishNotConfirmedError(`Kafka did not acknowledge the write within ${timeoutMs} ms`, { messageId }),
      )
    }, timeoutMs)
    const entry: Queued = {
      records,
      messageId,
      settled: false,
      resolve: () => {
        clearTimeout(timer)
        resolve()
      },
      reject: (error) => {
        clearTimeout(timer)
        reject(error)
      },
    }
    ;(lane as SendLane).enqueue(entry)
  })
}

function settle(entry: Queued, error: unknown): void {
  if (entry.settled) return
  entry.settled = true
  if (error === undefined) entry.resolve()
  else entry.reject(error)
}

function notConfirmed(error: unknown, messageId: string | undefined): PublishNotConfirmedError {
  return new PublishNotConfirmedError(`Kafka did not acknowledge the write: ${messageOf(error)}`, {
    messageId,
    cause: error,
  })
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
