// Fuzzing the stored-outcome codec: any JSON value and any final error come back from their stored
// string as the first execution produced them, anything else is refused with a typed error, and
// no stored string makes decode throw anything but a typed error.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { jsonValue } from '../../test/support/fuzz/json.test-helper.js'
import { ErrorCode, IdempotencyError, ResultNotSerializableError, ResultTooLargeError } from '../errors.js'
import { decode, encodeError, encodeValue } from './codec.js'

const UNLIMITED = Number.MAX_SAFE_INTEGER

/** What a value is after a JSON round trip: the value a replay must give. */
const asJson = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)))

describe('the stored-outcome codec, fuzzed', () => {
  it('replays any JSON value exactly', () => {
    fc.assert(
      fc.property(fc.option(jsonValue, { nil: undefined }), (value) => {
        const decoded = decode(encodeValue(value, UNLIMITED, 'fuzz'))
        expect(decoded).toEqual({ ok: true, value: asJson(value) })
      }),
      { numRuns: 1000 },
    )
  })

  it('stores any value as JSON or refuses it with a typed error, within the size limit', () => {
    const anything = fc.anything({ maxDepth: 3, withBigInt: true, withMap: true, withTypedArray: true, withDate: true })
    fc.assert(
      fc.property(anything, fc.integer({ min: 2, max: 400 }), (value, limit) => {
        let stored: string
        try {
          stored = encodeValue(value, limit, 'fuzz')
        } catch (error) {
          expect([ResultNotSerializableError, ResultTooLargeError].some((type) => error instanceof type)).toBe(true)
          return
        }
        expect(Buffer.byteLength(stored)).toBeLessThanOrEqual(limit)
        const decoded = decode(stored)
        expect(decoded.ok).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  it('replays any final error with its name, message and JSON-safe properties', () => {
    const props = fc.dictionary(
      fc.string({ maxLength: 8 }).filter((k) => !['stack', 'cause', 'name', 'message', '__proto__'].includes(k)),
      jsonValue,
      { maxKeys: 4 },
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), props, (name, message, own) => {
        const error = Object.assign(new Error(message), own)
        error.name = name
        const decoded = decode(encodeError(error, UNLIMITED, 'fuzz'))
        if (decoded.ok) throw new Error('an error replayed as a value')
        expect(decoded.error).toBeInstanceOf(Error)
        expect(decoded.error.name).toBe(name)
        expect(decoded.error.message).toBe(message)
        expect({ ...decoded.error }).toMatchObject(asJson(own) as object)
      }),
      { numRuns: 500 },
    )
  })

  it("replays Idem's own errors as IdempotencyError with their code", () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(ErrorCode)), fc.string(), (code, message) => {
        const decoded = decode(encodeError(new IdempotencyError(code, message), UNLIMITED, 'fuzz'))
        if (decoded.ok) throw new Error('an error replayed as a value')
        expect(decoded.error).toBeInstanceOf(IdempotencyError)
        expect((decoded.error as IdempotencyError).code).toBe(code)
      }),
      { numRuns: 200 },
    )
  })

  it('decodes any stored object or refuses it with a SyntaxError, never another throw', () => {
    const envelope = fc.oneof(
      fc.record({ v: fc.anything() }, { requiredKeys: [] }),
      fc.record({
        e: fc.record({ name: fc.string(), message: fc.string(), props: fc.object() }, { requiredKeys: [] }),
      }),
    )
    const stored = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.jsonValue().map((value) => JSON.stringify(value)),
      envelope.map((value) => JSON.stringify(value)),
      fc.tuple(envelope, fc.nat(), fc.string({ maxLength: 3 })).map(([value, at, insert]) => {
        const text = JSON.stringify(value)
        const i = at % (text.length + 1)
        return text.slice(0, i) + insert + text.slice(i + 1)
      }),
    )
    fc.assert(
      fc.property(stored, (text) => {
        try {
          const decoded = decode(text)
          if (!decoded.ok) expect(decoded.error).toBeInstanceOf(Error)
        } catch (error) {
          expect(error).toBeInstanceOf(SyntaxError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses JSON that is not an outcome it wrote, rather than replay undefined or a half-read error', () => {
    for (const text of ['null', '1', '"s"', '[]', '{"e":null}', '{"e":{"name":"E"}}', '{"x":1}', '{"v":1,"x":2}']) {
      expect(() => decode(text), text).toThrow(SyntaxError)
    }
    expect(decode('{}')).toEqual({ ok: true, value: undefined })
    // A stored property named __proto__ stays a property: the revived error is still an Error.
    const revived = decode('{"e":{"name":"E","message":"m","props":{"__proto__":{"x":1}}}}')
    if (revived.ok) throw new Error('an error replayed as a value')
    expect(revived.error).toBeInstanceOf(Error)
    expect(Object.getOwnPropertyDescriptor(revived.error, '__proto__')?.value).toEqual({ x: 1 })
    expect(decode('{"v":null}')).toEqual({ ok: true, value: null })
  })
})
