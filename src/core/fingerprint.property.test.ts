import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalJson, replacerJson } from './fingerprint.js'

/** What a call gives: its string, or the kind and message of what it threw. */
function outcome(f: () => string): { json: string } | { threw: string } {
  try {
    return { json: f() }
  } catch (error) {
    return { threw: `${(error as Error).name}: ${(error as Error).message}` }
  }
}

const everything = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
})

describe('canonicalJson', () => {
  it('gives exactly the replacer-made string (every stored fingerprint) for any value', () => {
    fc.assert(
      fc.property(everything, (value) => {
        expect(outcome(() => canonicalJson(value))).toEqual(outcome(() => replacerJson(value)))
      }),
      { numRuns: 2000 },
    )
  })

  it('orders any keys as the replacer does, few or many, however exotic', () => {
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.nat({ max: 5000 }).map(String))
    fc.assert(
      fc.property(fc.dictionary(key, fc.oneof(fc.integer(), fc.string()), { maxKeys: 40, size: 'max' }), (value) => {
        expect(canonicalJson(value)).toBe(replacerJson(value))
      }),
      { numRuns: 1000 },
    )
  })

  it('gives the replacer-made string for integer-like keys, __proto__, toJSON, functions and symbols', () => {
    const proto = JSON.parse('{"__proto__": {"x": 1}, "a": 2}')
    const cases: unknown[] = [
      { b: 1, 10: 'ten', 2: 'two', a: [3, { z: 1, '01': 2, 1: 3 }] },
      proto,
      { when: new Date(0), nested: { toJSON: (key: string) => `key ${key}` } },
      { f: () => 1, s: Symbol('s'), list: [() => 1, Symbol('t'), undefined, Number.NaN, -0, Infinity] },
      [new Number(1), new String('ab'), new Boolean(false)],
      Object.assign(Object.create({ inherited: 1 }), { own: 2 }),
      '\u2028\ud800"\\',
      undefined,
    ]
    for (const value of cases) expect(canonicalJson(value)).toBe(replacerJson(value))
  })

  it('fails on a cycle as the replacer does', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const loop: unknown[] = []
    loop.push({ loop })
    for (const value of [cyclic, loop]) {
      expect(outcome(() => canonicalJson(value))).toEqual(outcome(() => replacerJson(value)))
    }
  })

  it('keeps deep nesting exact', () => {
    let deep: unknown = { leaf: [1, 'x'] }
    for (let i = 0; i < 100; i++) deep = i % 2 === 0 ? { [`k${i}`]: deep, a: i } : [deep, i]
    expect(canonicalJson(deep)).toBe(replacerJson(deep))
  })
})
