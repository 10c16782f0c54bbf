// Poison messages to the dead-letter topic: the original key, value and headers, and Idem's headers
// saying why, from where (topic, partition, offset) and under which idempotency key. Produced with
// acks from every in-sync replica; the offset counts as done only once the broker acknowledged.

import type { KafkaMessage, KafkaProducerClient } from './kafka-driver.js'
import { bufferHeaders, DEAD_LETTER_HEADERS, toBuffer } from './kafka-headers.js'

export class KafkaDeadLetters {
  readonly #producer: KafkaProducerClient
  readonly #topicOf: (topic: string) => string

  constructor(producer: KafkaProducerClient, topicOf: (topic: string) => string) {
    this.#producer = producer
    this.#topicOf = topicOf
  }

  async send(message: KafkaMessage, key: string, reason: string, deliveryCount: number): Promise<void> {
    const headers = bufferHeaders(
      [...message.headers].filter(([name]) => !String(name).startsWith('idem-dead-letter')) as [unknown, unknown][],
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
    await this.#producer.send({
      messages: [
        {
          topic: this.#topicOf(message.topic),
          key: message.key === undefined || message.key === null ? undefined : toBuffer(message.key),
          value: message.value === undefined || message.value === null ? undefined : toBuffer(message.value),
          headers,
        },
      ],
      acks: -1,
    })
  }
}
