// Poison messages to the dead-letter topic: the original key, value and headers, and Idem's headers
// saying why, from where (topic, partition, offset) and under which idempotency key. Produced with
// acks from every in-sync replica; the offset counts as done only once the broker acknowledged.

import type { KafkaMessage, KafkaProducerClient } from './kafka-driver.js'
import { bufferHeaders, DEAD_LETTER_HEADERS, textOf, toBuffer } from './kafka-headers.js'
import { sendInLane } from './kafka-send-lane.js'

/** A dead-letter write not acknowledged in this time fails; the record comes round again. */
const DEAD_LETTER_TIMEOUT_MS = 30_000

const OWN_HEADERS: ReadonlySet<string> = new Set(Object.values(DEAD_LETTER_HEADERS))

export class KafkaDeadLetters {
  readonly #producer: KafkaProducerClient
  readonly #topicOf: (topic: string) => string

  constructor(producer: KafkaProducerClient, topicOf: (topic: string) => string) {
    this.#producer = producer
    this.#topicOf = topicOf
  }

  async send(message: KafkaMessage, key: string, reason: string, deliveryCount: number): Promise<void> {
    // The record's own headers, less any of ours it carries (a record dead-lettered before, read
    // back from a dead-letter topic): a header map keyed by Buffers would hold both copies.
    const headers = bufferHeaders(
      [...message.headers].filter(([name]) => !OWN_HEADERS.has(textOf(name))) as [unknown, unknown][],
    )
    const add = (name: string, value: string): void => {
      headers.set(Buffer.from(name), Buffer.from(value))
    }
    add(DEAD_LETTER_HEADERS.reason, reason)
    add(DEAD_LETTER_HEADERS.topic, message.topic)
    add(DEAD_LETTER_HEADERS.partition, String(message.partition))
    add(DEAD_LETTER_HEADERS.offset, String(message.offset))
    add(DEAD_LETTER_HEADERS.key, key)
    add(DEAD_LETTER_HEADERS.deliveryCount, String(deliveryCount))
    // Through the client's send lane: it may be the one a kafkaProducer publishes with, and the
    // client loses idempotent writes sent concurrently (kafka-send-lane.ts).
    await sendInLane(
      this.#producer,
      [
        {
          topic: this.#topicOf(message.topic),
          key: message.key === undefined || message.key === null ? undefined : toBuffer(message.key),
          value: message.value === undefined || message.value === null ? undefined : toBuffer(message.value),
          headers,
        },
      ],
      { messageId: key, timeoutMs: DEAD_LETTER_TIMEOUT_MS },
    )
  }
}
