// Fuzzing the Pulsar adapter's reading of a consumer socket's frames: any JSON frame is a message
// (isMessage) or ignored, and a message ends in a delivery the core can take or a reason the adapter
// dead-letters it with; nothing throws out of it. Frames are parsed JSON from the network, so every
// field may hold any JSON type.

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
import { type DeliverySettings, isMessage, toDelivery } from './pulsar-delivery.js'
import type { PulsarMessage, PulsarSocket } from './pulsar-driver.js'
import type { PulsarKeySource } from './pulsar-keys.js'

const json = fc.jsonValue({ maxDepth: 2 })
const frame = fc.oneof(
  json,
  fc.record(
    {
      messageId: fc.oneof(keyText, json),
      payload: fc.oneof(
        payloadBytes.map((bytes) => bytes.toString('base64')),
        fc.string(),
        json,
      ),
      properties: fc.oneof(
        fc.dictionary(fc.oneof(fc.constant('idem-key'), fc.string({ maxLength: 6 })), fc.oneof(keyText, json)),
        json,
      ),
      redeliveryCount: fc.oneof(fc.nat({ max: 100 }), json),
      key: fc.oneof(fc.string(), json),
    },
    { requiredKeys: [] },
  ),
)

const socket = { send: async () => {} } as unknown as PulsarSocket

function settings(key: PulsarKeySource): DeliverySettings<unknown> {
  return {
    key,
    keyProperty: 'idem-key',
    topic: 'persistent://public/default/orders',
    decode: decodeJson,
    deadLetter: async () => {},
  }
}

describe('Pulsar frames, fuzzed', () => {
  it('turns any message frame into a delivery the core can take or a reason to dead-letter it', () => {
    const source = fc.constantFrom<PulsarKeySource>('property', 'propertyOrMessageId', 'messageId')
    fc.assert(
      fc.property(frame, source, (received, key) => {
        if (!isMessage(received)) return
        const translated = toDelivery(received, socket, settings(key))
        if (translated.ok) expectTakeable(translated.delivery)
        else expectRefusal(translated.reason, translated.copyId)
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses, rather than throws, when a key function or a decoder throws', () => {
    fc.assert(
      fc.property(thrownValue, (thrown) => {
        const throwing = () => {
          throw thrown
        }
        const message: PulsarMessage = { messageId: 'CAEQAQ==', payload: '' }
        for (const translated of [
          toDelivery(message, socket, settings(throwing)),
          toDelivery(message, socket, { ...settings('messageId'), decode: throwing }),
        ]) {
          expect(translated.ok).toBe(false)
          if (!translated.ok) expectRefusal(translated.reason, translated.copyId)
        }
      }),
      { numRuns: 300 },
    )
  })

  // Found by the properties above: a decoder throwing Object.create(null) threw out of toDelivery,
  // and a redeliveryCount that is not a number made a delivery count such as '1' or NaN.
  it('refuses a message whose decoder throws an object without toString', () => {
    const translated = toDelivery({ messageId: 'CAEQAQ==', payload: '' }, socket, {
      ...settings('messageId'),
      decode: () => {
        throw Object.create(null)
      },
    })
    expect(translated.ok).toBe(false)
    if (!translated.ok) expect(translated.reason).toBe('the payload could not be decoded: [object Object]')
  })

  it('counts a redeliveryCount that is not a whole number as none', () => {
    for (const [redeliveryCount, count] of [
      ['', 1],
      [[], 1],
      ['3', 1],
      [-2, 1],
      [1.5, 1],
      [null, 1],
      [3, 4],
    ] as const) {
      const message = { messageId: 'CAEQAQ==', payload: 'e30=', redeliveryCount } as unknown as PulsarMessage
      const translated = toDelivery(message, socket, settings('messageId'))
      if (!translated.ok) throw new Error(translated.reason)
      expect(translated.delivery.deliveryCount).toBe(count)
    }
  })
})
