import { describe, expect, it } from 'vitest'
import { canonicalJson, fingerprintOf } from './fingerprint.js'

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 2 } })).toBe(
      '{"a":{"c":2,"d":[3,{"y":2,"z":1}]},"b":1}',
    )
  })

  it('drops undefined members as JSON does', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}')
  })
})

describe('fingerprintOf', () => {
  it('matches payloads that differ only in key order', () => {
    expect(fingerprintOf({ amount: 100, currency: 'EUR' })).toBe(fingerprintOf({ currency: 'EUR', amount: 100 }))
  })

  it('differs when a value differs', () => {
    expect(fingerprintOf({ amount: 100 })).not.toBe(fingerprintOf({ amount: 101 }))
    expect(fingerprintOf({ amount: 100 })).not.toBe(fingerprintOf({ amount: '100' }))
  })

  it('looks only at the selected fields when given', () => {
    const fields = ['amount', 'order.id']
    const a = { amount: 100, order: { id: 7, note: 'first' }, requestedAt: 1 }
    const b = { amount: 100, order: { id: 7, note: 'retry' }, requestedAt: 2 }
    expect(fingerprintOf(a, fields)).toBe(fingerprintOf(b, fields))
    expect(fingerprintOf(a, fields)).not.toBe(fingerprintOf({ ...a, order: { id: 8 } }, fields))
  })

  it('tells an absent payload from an empty one', () => {
    expect(fingerprintOf(undefined)).not.toBe(fingerprintOf({}))
    expect(fingerprintOf(undefined)).not.toBe(fingerprintOf(null))
  })

  it('explains a payload that JSON cannot hold', () => {
    expect(() => fingerprintOf({ amount: 10n })).toThrowError(/cannot be fingerprinted as JSON.*BigInt/)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => fingerprintOf(cyclic)).toThrowError(TypeError)
    // Selecting fields leaves the BigInt out, so such a payload can still be fingerprinted.
    expect(fingerprintOf({ amount: 10n, id: 1 }, ['id'])).toBe(fingerprintOf({ id: 1 }, ['id']))
  })
})
