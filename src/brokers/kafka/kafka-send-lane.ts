// One lane per producer client: idempotent sends on a @platformatic/kafka Producer one request at a
// time, shared by every caller in the process (kafkaProducer, the dead-letter writer).
//
// Why (@platformatic/kafka 1.35, checked against Kafka 4.1): the client numbers an idempotent batch from its per-partition sequence when it builds
// the request and advances the sequence only when the response comes back. Two sends in flight to
// one partition therefore carry the same sequence number; the broker takes the second for a retry
// of the first, drops it and answers success with the first one's offset: 20 concurrent sends, all
// resolved, one record written. The same happens after a send that failed although the broker wrote
// it (the acknowledgement was lost): the sequence did not advance, and the next message, numbered
// like the lost one, is dropped as its duplicate. So sends on a client run one at a time (those that
// queue meanwhile go together in the next request, in call order), and after a failed send the
// client takes a new producer id before the next one, which starts its sequences afresh.

import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { KafkaProducerClient, KafkaRecordToSend } from './kafka-driver.js'

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
