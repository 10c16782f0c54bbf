// Fuzzing how the MQTT consumer reads a PUBLISH (keyOf, payloadBuffer and the decoder, the steps of
// its receive handler): any user properties and payload give a key or a reason to park the message
// as a dead letter, and a payload or a SyntaxError.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { expectRefusal, keyText, payloadBytes, thrownValue } from '../../../test/support/fuzz/broker.test-helper.js'
import { decodeJson } from '../../consumer/decode-json.js'
import { validateKey } from '../../core/key.js'
import type { MqttPublishPacket } from './mqtt-client.js'
import { keyOf, payloadBuffer, userPropertyEntries } from './mqtt-message.js'

const userProperties = fc.dictionary(
  fc.oneof(fc.constant('idem-key'), fc.string({ maxLength: 8 }), fc.constant('__proto__')),
  fc.oneof(keyText, fc.array(keyText, { maxLength: 3 })),
)
const packet: fc.Arbitrary<MqttPublishPacket> = fc.record(
  {
    topic: fc.string({ maxLength: 10 }),
    payload: fc.oneof(payloadBytes, fc.string({ unit: 'binary' })),
    qos: fc.constantFrom(0, 1, 2),
    dup: fc.boolean(),
    retain: fc.boolean(),
    properties: fc.record({ userProperties }, { requiredKeys: [] }),
  },
  { requiredKeys: ['topic', 'payload', 'dup'] },
) as unknown as fc.Arbitrary<MqttPublishPacket>

describe('reading an MQTT PUBLISH, fuzzed', () => {
  it('gives a valid key or a reason, and a payload or a SyntaxError, for any packet', () => {
    fc.assert(
      fc.property(packet, (received) => {
        const found = keyOf(received, 'idem-key')
        if ('key' in found) expect(validateKey(found.key)).toBe(found.key)
        else expectRefusal(found.reason)
        try {
          decodeJson(payloadBuffer(received))
        } catch (error) {
          expect(error).toBeInstanceOf(SyntaxError)
        }
        for (const [name, value] of userPropertyEntries(received)) {
          expect(typeof name).toBe('string')
          expect(typeof value).toBe('string')
        }
      }),
      { numRuns: 1500 },
    )
  })

  it('gives a reason, rather than throws, when a key function throws anything', () => {
    fc.assert(
      fc.property(packet, thrownValue, (received, thrown) => {
        const found = keyOf(received, () => {
          throw thrown
        })
        expect('reason' in found).toBe(true)
        if ('reason' in found) expectRefusal(found.reason)
      }),
      { numRuns: 300 },
    )
  })

  // Found by the property above: `throw undefined` in a key function made keyOf throw a TypeError.
  it('gives a reason when a key function throws undefined', () => {
    const packet = { topic: 't', payload: Buffer.alloc(0), dup: false } as unknown as MqttPublishPacket
    expect(
      keyOf(packet, () => {
        throw undefined
      }),
    ).toEqual({ reason: 'the key function threw: undefined' })
  })
})
