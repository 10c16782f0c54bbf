// Fuzzing Delivery.headers() for every adapter: any header names and values a client decodes end
// in a frozen record of strings, a repeated name with its values joined, never a throw.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { headerName, headerValue } from '../../test/support/fuzz/broker.test-helper.js'
import { headerRecord, headerValueText } from './header-record.js'

describe('headerRecord, fuzzed', () => {
  it('makes a frozen record of strings of any entries, names kept as they are', () => {
    const entries = fc.array(fc.tuple(fc.oneof(headerName, headerValue), headerValue), { maxLength: 12 })
    fc.assert(
      fc.property(entries, (list) => {
        const record = headerRecord(list)
        expect(Object.isFrozen(record)).toBe(true)
        expect(Object.getPrototypeOf(record)).toBe(Object.prototype)
        for (const value of Object.values(record)) expect(typeof value).toBe('string')
        for (const [name, value] of list) {
          if (typeof name === 'string' && headerValueText(value) !== undefined)
            expect(Object.hasOwn(record, name)).toBe(true)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it('joins the values of a repeated name in order', () => {
    fc.assert(
      fc.property(
        headerName,
        fc.array(fc.string({ minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }),
        (name, values) => {
          expect(headerRecord(values.map((value) => [name, value]))[name]).toBe(values.join(', '))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('reads any value as text or as absent, never throws', () => {
    fc.assert(
      fc.property(
        fc.oneof(headerValue, fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true })),
        (value) => {
          const text = headerValueText(value)
          if (text !== undefined) expect(typeof text).toBe('string')
        },
      ),
      { numRuns: 2000 },
    )
  })
})
