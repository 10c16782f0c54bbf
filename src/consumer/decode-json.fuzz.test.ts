// Fuzzing the one JSON decoder of broker payloads: any bytes decode to a value or throw a
// SyntaxError, and invalid UTF-8 is refused rather than replaced.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { payloadBytes } from '../../test/support/fuzz/broker.test-helper.js'
import { decodeJson } from './decode-json.js'

describe('decodeJson, fuzzed', () => {
  it('decodes any bytes to a value or throws a SyntaxError, never anything else', () => {
    fc.assert(
      fc.property(fc.oneof(payloadBytes, fc.string({ unit: 'binary' })), (payload) => {
        try {
          decodeJson(payload)
        } catch (error) {
          expect(error).toBeInstanceOf(SyntaxError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('gives back any JSON value from its UTF-8 bytes, as bytes or as text, with a BOM or not', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }), fc.boolean(), (value, bom) => {
        const text = `${bom ? '\ufeff' : ''}${JSON.stringify(value)}`
        const expected = JSON.parse(JSON.stringify(value))
        expect(decodeJson(Buffer.from(text))).toEqual(expected)
        expect(decodeJson(text)).toEqual(expected)
      }),
      { numRuns: 500 },
    )
  })

  it('refuses bytes that are not UTF-8 instead of decoding them with U+FFFD', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), (bytes) => {
        const buffer = Buffer.from(bytes)
        fc.pre(!Buffer.from(buffer.toString('utf8')).equals(buffer))
        expect(() => decodeJson(buffer)).toThrow('the payload is not valid UTF-8')
      }),
      { numRuns: 500 },
    )
  })
})
