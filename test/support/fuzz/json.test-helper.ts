// JSON values for properties about canonical JSON: generators, a deep copy with its keys in
// another order, and equality of JSON values as JSON text sees it (key order ignored, -0 is 0).

import fc from 'fast-check'

/** JSON values: any UTF-16 strings (lone surrogates included), -0, huge and tiny doubles, deep-ish nesting. */
export const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 5, stringUnit: 'binary' }),
  fc.jsonValue({ maxDepth: 5, stringUnit: 'grapheme' }),
  fc.constantFrom(-0, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2, '\ud800', '\udfff', '\udfff\ud800', {
    '\ud800': -0,
  }),
)

/** A copy of `value` whose objects have the same members inserted in the order `order` picks. */
export function reordered(value: unknown, order: (keys: string[]) => string[]): unknown {
  if (Array.isArray(value)) return value.map((item) => reordered(item, order))
  if (value === null || typeof value !== 'object') return value
  const copy: Record<string, unknown> = {}
  for (const key of order(Object.keys(value))) {
    Object.defineProperty(copy, key, {
      value: reordered((value as Record<string, unknown>)[key], order),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return copy
}

/** A key order from a seed: a deterministic shuffle, so that a failure replays. */
export function shuffleWith(seed: number): (keys: string[]) => string[] {
  return (keys) => {
    const out = [...keys]
    let state = seed >>> 0 || 1
    for (let i = out.length - 1; i > 0; i--) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const j = state % (i + 1)
      ;[out[i], out[j]] = [out[j] as string, out[i] as string]
    }
    return out
  }
}

/** Equal as JSON values: same types, numbers equal (so -0 equals 0), arrays in order, objects by members. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]))
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return (
      ka.length === kb.length &&
      ka.every(
        (k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
      )
    )
  }
  return a === b
}
