// Fuzzing fingerprints as callers rely on them: the same payload in any key order gives the same
// fingerprint, different payloads give different ones, and no value makes fingerprintOf throw
// anything but its TypeError. (That canonicalJson equals the replacer-made string for any value is
// fingerprint.property.test.ts.)

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { jsonEqual, jsonValue, reordered, shuffleWith } from '../../test/support/fuzz/json.test-helper.js'
import { canonicalJson, fingerprintOf } from './fingerprint.js'

const FINGERPRINT = /^[A-Za-z0-9_-]{43}$/

describe('fingerprintOf, fuzzed', () => {
  it('gives the same fingerprint for a payload whatever order its keys were inserted in, at every depth', () => {
    fc.assert(
      fc.property(jsonValue, fc.integer(), (value, seed) => {
        const shuffled = reordered(value, shuffleWith(seed))
        expect(canonicalJson(shuffled)).toBe(canonicalJson(value))
        expect(fingerprintOf(shuffled)).toBe(fingerprintOf(value))
      }),
      { numRuns: 1000 },
    )
  })

  it('gives different fingerprints for payloads that differ as JSON', () => {
    fc.assert(
      fc.property(jsonValue, jsonValue, (a, b) => {
        fc.pre(!jsonEqual(a, b))
        expect(fingerprintOf(a)).not.toBe(fingerprintOf(b))
      }),
      { numRuns: 1000 },
    )
  })

  it('tells apart payloads that differ in one small place: a key, a lone surrogate, a number, a type', () => {
    const leaf = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 3 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('\ud800', '\udc00', '1', 'null', 'true'),
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3 }), leaf, leaf, (key, x, y) => {
        fc.pre(
          !jsonEqual(x, y) && !(Number.isNaN(x) || Number.isNaN(y)) && (typeof x !== 'number' || Number.isFinite(x)),
        )
        fc.pre(typeof y !== 'number' || Number.isFinite(y))
        expect(fingerprintOf({ [key]: [x] })).not.toBe(fingerprintOf({ [key]: [y] }))
      }),
      { numRuns: 1000 },
    )
  })

  it('gives -0 and 0 one fingerprint, as JSON does', () => {
    expect(fingerprintOf({ n: -0 })).toBe(fingerprintOf({ n: 0 }))
  })

  it('fingerprints any value or throws its TypeError (BigInt, cycles, deep nesting), nothing else', () => {
    const anything = fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    })
    fc.assert(
      fc.property(
        anything,
        fc.option(fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), { nil: undefined }),
        (value, fields) => {
          try {
            expect(fingerprintOf(value, fields)).toMatch(FINGERPRINT)
          } catch (error) {
            expect(error).toBeInstanceOf(TypeError)
            expect((error as Error).message).toMatch(/^The payload cannot be fingerprinted as JSON/)
          }
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('fingerprints nesting far deeper than its fast path, or throws its TypeError when the stack runs out', () => {
    for (const depth of [63, 64, 65, 1000, 200_000]) {
      let deep: unknown = 'leaf'
      for (let i = 0; i < depth; i++) deep = i % 2 === 0 ? [deep] : { k: deep }
      try {
        expect(fingerprintOf(deep)).toMatch(FINGERPRINT)
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError)
      }
    }
  })
})
