// Fingerprints: a SHA-256 of the canonical JSON of a payload (keys sorted at every depth),
// optionally of selected fields only, so that {a,b} and {b,a} match.

import * as crypto from 'node:crypto'

/** JSON with object keys sorted at every depth; `undefined` members dropped as JSON does. */
export function canonicalJson(value: unknown): string {
  const copy = sortedCopy(value, 0)
  if (copy === UNUSUAL) return replacerJson(value)
  return JSON.stringify(copy) ?? 'undefined'
}

/**
 * The definition: JSON.stringify with a replacer that hands it each object as a copy with sorted
 * keys. Every fingerprint ever stored was made this way, so `canonicalJson` must give exactly
 * this string; it runs this for any value its fast path does not handle.
 */
export function replacerJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
      const sorted: Record<string, unknown> = {}
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k]
      return sorted
    }) ?? 'undefined'
  )
}

/** Returned by `sortedCopy` for a value it leaves to `replacerJson`. */
const UNUSUAL: unique symbol = Symbol('unusual')
/** Deeper than this (or a cycle) goes the replacer's way, which fails on a cycle as it always did. */
const MAX_DEPTH = 64

/**
 * The fast path of `canonicalJson`: the same sorted copies the replacer makes, built up front for
 * plain data (objects, arrays, strings, numbers, booleans, null, undefined, symbols), so that
 * JSON.stringify runs without a replacer (V8's fast serializer, no call back per value). Anything
 * with a `toJSON`, a function, a BigInt, a `__proto__` key or deep nesting is UNUSUAL, and the
 * whole value then goes through `replacerJson`.
 */
function sortedCopy(value: unknown, depth: number): unknown {
  if (value === null) return null
  const type = typeof value
  if (type !== 'object') return type === 'function' || type === 'bigint' ? UNUSUAL : value
  if (depth >= MAX_DEPTH || (value as { toJSON?: unknown }).toJSON !== undefined) return UNUSUAL
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      const item = sortedCopy(value[i], depth + 1)
      if (item === UNUSUAL) return UNUSUAL
      copy[i] = item
    }
    return copy
  }
  const keys = sortKeys(Object.keys(value as object))
  const sorted: Record<string, unknown> = {}
  for (const key of keys) {
    // Assigning __proto__ would set the copy's prototype: the replacer's way decides what that gives.
    if (key === '__proto__') return UNUSUAL
    const item = sortedCopy((value as Record<string, unknown>)[key], depth + 1)
    if (item === UNUSUAL) return UNUSUAL
    sorted[key] = item
  }
  return sorted
}

/**
 * The order of `keys.sort()`. Keys are distinct strings, which the default sort orders by UTF-16
 * code units, as `<` does; for the few keys of a typical payload an insertion sort beats
 * Array.prototype.sort.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string
    let j = i - 1
    for (; j >= 0 && (keys[j] as string) > key; j--) keys[j + 1] = keys[j] as string
    keys[j + 1] = key
  }
  return keys
}

/** Pick dotted paths (`'order.amount'`) out of a payload; a missing path is kept as absent. */
export function selectFields(payload: unknown, fields: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {}
  for (const path of fields) {
    let current: unknown = payload
    for (const part of path.split('.')) {
      current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[part] : undefined
    }
    picked[path] = current
  }
  return picked
}

export function fingerprintOf(payload: unknown, fields?: readonly string[]): string {
  const subject = fields === undefined ? payload : selectFields(payload, fields)
  let json: string
  try {
    json = canonicalJson(subject)
  } catch (cause) {
    throw new TypeError(
      `The payload cannot be fingerprinted as JSON (${(cause as Error).message}); pass fingerprintFields or an explicit fingerprint`,
      { cause },
    )
  }
  return sha256(json)
}

type OneShotHash = (algorithm: string, data: string, encoding: 'base64url') => string
// One-shot `crypto.hash` (Node >= 20.12) avoids the Hash object createHash builds for each short
// input, and gives the same digest.
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash

/** SHA-256 of a string, base64url. */
export function sha256(text: string): string {
  return oneShot !== undefined
    ? oneShot('sha256', text, 'base64url')
    : crypto.createHash('sha256').update(text).digest('base64url')
}
