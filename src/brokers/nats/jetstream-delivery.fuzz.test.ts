// Fuzzing the JetStream adapter's translation of a message (toDelivery, which the fetch loop calls
// for each one): any headers and bytes end in a delivery the core can take, or a reason the
// adapter dead-letters the message with; nothing throws out of it.

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
import { type DeliverySettings, toDelivery } from './jetstream-delivery.js'
import type { JetStreamKeySource } from './jetstream-keys.js'
import type { JsMsgLike, NatsHeadersLike } from './nats-driver.js'

/** NATS headers as nats.js exposes them: `get` gives the first value or '', names matched exactly. */
function natsHeaders(pairs: ReadonlyArray<readonly [string, string]>): NatsHeadersLike {
  const values = (name: string) => pairs.filter(([n]) => n === name).map(([, v]) => v)
  return {
    get: (name) => values(name)[0] ?? '',
    has: (name) => values(name).length > 0,
    keys: () => [...new Set(pairs.map(([n]) => n))],
    values,
    set: () => {},
    append: () => {},
  }
}

const headerPairs = fc.array(
  fc.tuple(fc.oneof(fc.constant('Nats-Msg-Id'), fc.string({ maxLength: 10 }), fc.constant('__proto__')), keyText),
  { maxLength: 5 },
)
const message: fc.Arbitrary<JsMsgLike> = fc
  .record({
    data: payloadBytes,
    headers: fc.option(headerPairs, { nil: undefined }),
    stream: fc.string({ maxLength: 20 }),
    deliveryCount: fc.integer({ min: 1, max: 1000 }),
    streamSequence: fc.nat(),
  })
  .map(
    ({ data, headers, stream, deliveryCount, streamSequence }) =>
      ({
        subject: 'orders',
        data: new Uint8Array(data),
        headers: headers === undefined ? undefined : natsHeaders(headers),
        info: { stream, consumer: 'c', deliveryCount, streamSequence },
      }) as unknown as JsMsgLike,
  )

function settings(key: JetStreamKeySource): DeliverySettings<unknown> {
  return {
    key,
    streamEpoch: 1_700_000_000_000,
    decode: decodeJson,
    extendEveryMs: 10_000,
    doubleAck: false,
    deadLetter: async () => {},
  }
}

describe('toDelivery (JetStream), fuzzed', () => {
  it('turns any message into a delivery the core can take or a reason to dead-letter it', () => {
    const source = fc.constantFrom<JetStreamKeySource>('msgIdOrSequence', 'msgId', 'sequence')
    fc.assert(
      fc.property(message, source, (msg, key) => {
        const translated = toDelivery(msg, settings(key))
        if (translated.ok) {
          expectTakeable(translated.delivery)
          expect(translated.delivery.payload).toEqual(decodeJson(msg.data))
        } else {
          expectRefusal(translated.reason, translated.copyId)
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
          toDelivery(msg, { ...settings('sequence'), decode: throwing }),
        ]) {
          expect(translated.ok).toBe(false)
          if (!translated.ok) expectRefusal(translated.reason, translated.copyId)
        }
      }),
      { numRuns: 300 },
    )
  })

  // Found by the property above: describing a thrown Object.create(null) threw out of toDelivery.
  it('refuses a message whose decoder throws an object without toString', () => {
    const msg = {
      subject: 's',
      data: new Uint8Array(),
      headers: undefined,
      info: { stream: 'x', consumer: 'c', deliveryCount: 1, streamSequence: 1 },
    }
    const translated = toDelivery(msg as unknown as JsMsgLike, {
      ...settings('sequence'),
      decode: () => {
        throw Object.create(null)
      },
    })
    expect(translated).toEqual({
      ok: false,
      copyId: 'nats:x:1700000000000:1',
      reason: 'the payload could not be decoded: [object Object]',
    })
  })
})
