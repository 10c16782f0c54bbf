// Fuzzing how the AMQP consumer reads a message (the steps of its delivery handler, each a function
// here): any properties and headers a publisher sets give a key or none, a delivery count from 1,
// and a key the core refuses with InvalidKeyError, which the consumer dead-letters.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { headerName, headerValue, keyText, payloadBytes } from '../../../test/support/fuzz/broker.test-helper.js'
import { decodeJson } from '../../consumer/decode-json.js'
import { validateKey } from '../../core/key.js'
import { InvalidKeyError } from '../../errors.js'
import type { AmqpMessage } from './amqp-driver.js'
import { type AmqpKeySource, deliveryCountOf, IdemHeader, keyOf } from './amqp-message.js'

const count = fc.oneof(
  headerValue,
  fc.integer({ min: -3, max: 1000 }),
  fc.integer({ min: 0, max: 50 }).map(String),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 60, -0, Number.NaN, Number.POSITIVE_INFINITY, '1e3', ' 2 ', '0x10'),
)
const headers = fc.option(
  fc
    .tuple(
      fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
      fc.record(
        {
          'x-delivery-count': count,
          'x-acquired-count': count,
          [IdemHeader.DELIVERIES]: count,
          'idem-key': headerValue,
        },
        { requiredKeys: [] },
      ),
    )
    .map(([any, known]) => ({ ...any, ...known })),
  { nil: undefined },
)
const message: fc.Arbitrary<AmqpMessage> = fc.record({
  content: payloadBytes,
  fields: fc.record({
    deliveryTag: fc.nat(),
    redelivered: fc.boolean(),
    exchange: fc.string(),
    routingKey: fc.string(),
  }),
  properties: fc.record({ messageId: fc.oneof(keyText, headerValue), headers }, { requiredKeys: [] }),
})
const source = fc.constantFrom<AmqpKeySource>('messageId', { header: 'idem-key' }, { header: '__proto__' })

describe('reading an AMQP message, fuzzed', () => {
  it('gives a key or none, a delivery count from 1, and a payload or a SyntaxError, for any message', () => {
    fc.assert(
      fc.property(message, source, (msg, from) => {
        const deliveryCount = deliveryCountOf(msg)
        expect(Number.isInteger(deliveryCount) && deliveryCount >= 1).toBe(true)
        const raw = keyOf(msg, from)
        if (raw !== undefined) expect(typeof raw).toBe('string')
        try {
          validateKey(raw)
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidKeyError)
        }
        try {
          decodeJson(msg.content)
        } catch (error) {
          expect(error).toBeInstanceOf(SyntaxError)
        }
      }),
      { numRuns: 1500 },
    )
  })

  it('never reads a count a publisher did not set as a number of deliveries', () => {
    fc.assert(
      fc.property(fc.boolean(), (redelivered) => {
        const msg = (headers: Record<string, unknown>) =>
          ({ content: Buffer.alloc(0), fields: { redelivered }, properties: { headers } }) as unknown as AmqpMessage
        const first = redelivered ? 2 : 1
        expect(deliveryCountOf(msg({ 'x-delivery-count': 'many' }))).toBe(first)
        expect(deliveryCountOf(msg({ 'x-delivery-count': -1, [IdemHeader.DELIVERIES]: 1.5 }))).toBe(first)
        expect(deliveryCountOf(msg({ 'x-delivery-count': 3 }))).toBe(4)
      }),
      { numRuns: 10 },
    )
  })
})
