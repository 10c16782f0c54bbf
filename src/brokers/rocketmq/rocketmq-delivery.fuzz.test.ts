// Fuzzing the RocketMQ adapter's translation of a received message (toDelivery, which the receive
// loop calls for each one): any properties, keys and body end in a delivery the core can take, or
// a reason the adapter dead-letters the message with; nothing throws out of it.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  expectRefusal,
  expectTakeable,
  keyText,
  payloadBytes,
  thrownValue,
} from '../../../test/support/fuzz/broker.test-helper.js'
import { decodeJson } from '../../consumer/decode-json.js'
import type { MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
import { type DeliverySettings, toDelivery } from './rocketmq-delivery.js'
import type { RocketMQKeySource } from './rocketmq-keys.js'

const message: fc.Arbitrary<MessageViewLike> = fc.record(
  {
    messageId: keyText,
    topic: fc.string({ maxLength: 10 }),
    body: payloadBytes,
    corrupted: fc.boolean(),
    keys: fc.array(keyText, { maxLength: 3 }),
    properties: fc
      .array(fc.tuple(fc.oneof(fc.constant('idem-key'), fc.string({ maxLength: 8 })), keyText), { maxLength: 4 })
      .map((pairs) => new Map(pairs)),
    deliveryAttempt: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
    messageGroup: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
  },
  { requiredKeys: ['messageId', 'topic', 'body', 'keys', 'properties'] },
)

const consumer: SimpleConsumerLike = {
  receive: async () => [],
  ack: async () => {},
  changeInvisibleDuration: async () => {},
}

function settings(key: RocketMQKeySource<MessageViewLike>): DeliverySettings<unknown, MessageViewLike> {
  return { consumer, key, keyProperty: 'idem-key', decode: decodeJson, invisibleMs: 30_000, deadLetter: async () => {} }
}

describe('toDelivery (RocketMQ), fuzzed', () => {
  it('turns any message into a delivery the core can take or a reason to dead-letter it', () => {
    const source = fc.constantFrom<RocketMQKeySource<MessageViewLike>>(
      'propertyOrKeysOrMessageId',
      'property',
      'propertyOrMessageId',
      'messageId',
    )
    fc.assert(
      fc.property(message, source, (msg, key) => {
        const translated = toDelivery(msg, settings(key))
        if (translated.ok) {
          expect(msg.corrupted).not.toBe(true)
          expectTakeable(translated.delivery)
          expect(translated.delivery.payload).toEqual(decodeJson(msg.body))
        } else {
          expectRefusal(translated.reason, translated.copyKey)
        }
      }),
      { numRuns: 1500 },
    )
  })

  it('refuses, rather than throws, when a key function or a decoder throws', () => {
    fc.assert(
      fc.property(message, thrownValue, (msg, thrown) => {
        const throwing = () => {
          throw thrown
        }
        for (const translated of [
          toDelivery(msg, settings(throwing)),
          toDelivery({ ...msg, messageId: 'id', corrupted: false }, { ...settings('messageId'), decode: throwing }),
        ]) {
          expect(translated.ok).toBe(false)
          if (!translated.ok) expectRefusal(translated.reason, translated.copyKey)
        }
      }),
      { numRuns: 300 },
    )
  })

  // Found by the property above: describing a thrown Object.create(null) threw out of toDelivery.
  it('refuses a message whose decoder throws an object without toString', () => {
    const msg: MessageViewLike = {
      messageId: 'm1',
      topic: 't',
      body: Buffer.from('{}'),
      keys: [],
      properties: new Map(),
    }
    const translated = toDelivery(msg, {
      ...settings('messageId'),
      decode: () => {
        throw Object.create(null)
      },
    })
    expect(translated).toEqual({
      ok: false,
      copyKey: 'm1',
      reason: 'the payload could not be decoded: [object Object]',
    })
  })
})
