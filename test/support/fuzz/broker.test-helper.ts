// Arbitraries and checks shared by the fuzz tests of the broker adapters' decoding: what a message
// may carry (any bytes, key-ish text, header values of every type a client decodes) and what every
// translation must end in (a delivery the core can take, or a reason to dead-letter it).

import fc from 'fast-check'
import { expect } from 'vitest'
import type { Delivery } from '../../../src/consumer/types.js'
import { validateKey } from '../../../src/core/key.js'

/** Payload bytes: JSON in UTF-8 (with a BOM or not), any bytes, invalid UTF-8, empty. */
export const payloadBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((value) => Buffer.from(JSON.stringify(value))),
  fc.jsonValue({ maxDepth: 2 }).map((value) => Buffer.from(`\ufeff${JSON.stringify(value)}`)),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(Buffer.from([0x7b, 0xff, 0x7d]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.alloc(0)),
)

/** Key-ish text: valid keys, empty, too long, spaces, non-ASCII, lone surrogates, control characters. */
export const keyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: 40,
  }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', ' ', 'k'.repeat(256), 'k'.repeat(255), '\ud800', 'clé', 'a\nb', '\x00'),
)

/** A header value as some client decodes one: text, bytes, numbers, arrays, nested tables, nothing. */
export const headerValue: fc.Arbitrary<unknown> = fc.oneof(
  keyText,
  fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)),
  fc.uint8Array({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.boolean(),
  fc.constantFrom(undefined, null, new Date(Number.NaN), new Date(0)),
  fc.array(fc.oneof(keyText, fc.integer()), { maxLength: 3 }),
  fc.record({ '!': fc.constantFrom('timestamp', 'decimal'), value: fc.anything({ maxDepth: 1 }) }),
  fc.anything({ maxDepth: 2 }),
)

/** Header names, the awkward ones among them. */
export const headerName: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'traceparent', 'Nats-Msg-Id', 'idem-key'),
)

/** A delivery the core can take: a valid key, a delivery count from 1, headers as strings. */
export function expectTakeable(delivery: Delivery<unknown>): void {
  expect(validateKey(delivery.key)).toBe(delivery.key)
  expect(Number.isInteger(delivery.deliveryCount) && delivery.deliveryCount >= 1).toBe(true)
  const headers = delivery.headers?.() ?? {}
  for (const value of Object.values(headers)) if (value !== undefined) expect(typeof value).toBe('string')
  if (delivery.orderingKey !== undefined) expect(typeof delivery.orderingKey).toBe('string')
}

/** A refusal the adapter can dead-letter: a reason to give, and (where there is one) an id to copy the message under. */
export function expectRefusal(reason: unknown, copyId?: unknown): void {
  expect(typeof reason).toBe('string')
  expect(reason as string).toMatch(/\S/)
  if (copyId !== undefined) expect(typeof copyId).toBe('string')
}

/** What a user's key function or decoder may throw: errors, and values that are not errors at all. */
export const thrownValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string().map((message) => new Error(message)),
  fc.constantFrom(undefined, null, 0, '', Object.create(null), { toString: 0 }, { message: 1 }, Symbol('thrown')),
  fc.anything(),
)
