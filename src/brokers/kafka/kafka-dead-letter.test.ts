// KafkaDeadLetters with a fake producer: the record as it was (key, value, its own headers) plus
// Idem's headers, once each, even for a record that already carries them (dead-lettered before).

import { describe, expect, it } from 'vitest'
import { KafkaDeadLetters } from './kafka-dead-letter.js'
import type { KafkaMessage, KafkaProducerClient, KafkaSendOptions } from './kafka-driver.js'
import { DEAD_LETTER_HEADERS, MESSAGE_ID_HEADER } from './kafka-headers.js'

function recorder(): { producer: KafkaProducerClient; sent: KafkaSendOptions[] } {
  const sent: KafkaSendOptions[] = []
  const producer: KafkaProducerClient = {
    send: async (options) => {
      sent.push(options)
    },
    close: async () => {},
  }
  return { producer, sent }
}

const text = (headers: Map<Buffer, Buffer> | undefined): [string, string][] =>
  [...(headers ?? [])].map(([name, value]) => [name.toString(), value.toString()])

describe('KafkaDeadLetters', () => {
  it('sends the record with its key, value and headers, and why, from where and under which key, with acks=all', async () => {
    const { producer, sent } = recorder()
    const deadLetters = new KafkaDeadLetters(producer, (topic) => `${topic}.dead-letter`)
    const message: KafkaMessage = {
      topic: 'orders',
      partition: 2,
      offset: 41n,
      key: Buffer.from('account-7'),
      value: Buffer.from('{"n":1}'),
      headers: new Map([
        [Buffer.from(MESSAGE_ID_HEADER), Buffer.from('order-1')],
        [Buffer.from('tenant'), Buffer.from('acme')],
      ]),
      timestamp: 0n,
    }
    await deadLetters.send(message, 'order-1', 'Error: card declined', 3)
    expect(sent).toHaveLength(1)
    expect(sent[0]?.acks).toBe(-1)
    const [record] = sent[0]?.messages ?? []
    expect(record?.topic).toBe('orders.dead-letter')
    expect(record?.key?.toString()).toBe('account-7')
    expect(record?.value?.toString()).toBe('{"n":1}')
    expect(text(record?.headers)).toEqual([
      [MESSAGE_ID_HEADER, 'order-1'],
      ['tenant', 'acme'],
      [DEAD_LETTER_HEADERS.reason, 'Error: card declined'],
      [DEAD_LETTER_HEADERS.topic, 'orders'],
      [DEAD_LETTER_HEADERS.partition, '2'],
      [DEAD_LETTER_HEADERS.offset, '41'],
      [DEAD_LETTER_HEADERS.key, 'order-1'],
      [DEAD_LETTER_HEADERS.deliveryCount, '3'],
    ])
  })

  it('writes each of its headers once for a record that was dead-lettered before', async () => {
    const { producer, sent } = recorder()
    const deadLetters = new KafkaDeadLetters(producer, () => 'parking-lot')
    const message: KafkaMessage = {
      topic: 'orders.dead-letter',
      partition: 0,
      offset: 7n,
      key: undefined,
      value: 'not json',
      // Decoded as strings, as a client with string deserializers gives them.
      headers: new Map<unknown, unknown>([
        ['tenant', 'acme'],
        [DEAD_LETTER_HEADERS.reason, 'Error: card declined'],
        [DEAD_LETTER_HEADERS.topic, 'orders'],
        [DEAD_LETTER_HEADERS.partition, '2'],
        [DEAD_LETTER_HEADERS.offset, '41'],
        [DEAD_LETTER_HEADERS.key, 'order-1'],
        [DEAD_LETTER_HEADERS.deliveryCount, '3'],
      ]),
      timestamp: 0n,
    }
    await deadLetters.send(message, 'orders.dead-letter/0/7', 'cannot decode the payload', 1)
    const [record] = sent[0]?.messages ?? []
    expect(record?.key).toBeUndefined()
    const names = text(record?.headers).map(([name]) => name)
    expect(names).toEqual(['tenant', ...Object.values(DEAD_LETTER_HEADERS)])
    expect(Object.fromEntries(text(record?.headers))).toMatchObject({
      [DEAD_LETTER_HEADERS.topic]: 'orders.dead-letter',
      [DEAD_LETTER_HEADERS.offset]: '7',
      [DEAD_LETTER_HEADERS.reason]: 'cannot decode the payload',
    })
  })
})
