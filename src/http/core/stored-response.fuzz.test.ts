// Fuzzing the stored-response codec: any status, headers and body bytes round-trip byte for byte
// through the stored JSON, and a stored value that is not one is refused with a typed error,
// never replayed as garbage or as something the framework would throw on while sending it.

import { validateHeaderName, validateHeaderValue } from 'node:http'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decode, encodeValue } from '../../core/codec.js'
import { decodeResponse, encodeResponse, type StoredResponse, StoredResponseError } from './stored-response.js'

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
/** Header names as a capture gives them: lower-case tokens, set-cookie and friends among them. */
const headerName = fc.oneof(
  fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 20 }),
  fc.constantFrom('set-cookie', 'content-type', 'location', 'etag', 'link', 'vary'),
)
/** Field values node:http sends: HTAB, SP, visible ASCII and obs-text. */
const headerValue = fc.string({
  unit: fc
    .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
    .map((c) => String.fromCharCode(c)),
  maxLength: 60,
})
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 })
const status = fc.integer({ min: 100, max: 599 })
const body = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((text) => new Uint8Array(Buffer.from(text))),
  // A view into a larger buffer: only its own bytes are the body.
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.nat()).map(([bytes, a, b]) => {
    const start = a % bytes.length
    return bytes.subarray(start, start + (b % (bytes.length - start + 1)))
  }),
)

/** What a store holds: the codec's JSON of the stored response. */
const storedString = (stored: StoredResponse) => encodeValue(stored, Number.MAX_SAFE_INTEGER, 'fuzz')
function readBack(text: string): unknown {
  const decoded = decode(text)
  if (!decoded.ok) throw decoded.error
  return decoded.value
}

describe('the stored-response codec, fuzzed', () => {
  it('replays any status, allowed headers and body byte for byte after the store round trip', () => {
    fc.assert(
      fc.property(status, headers, body, fc.array(headerName, { maxLength: 6 }), (s, h, bytes, names) => {
        const allowed = new Set([...names, 'set-cookie'])
        const copy = Uint8Array.from(bytes)
        const replay = decodeResponse(readBack(storedString(encodeResponse(s, h, bytes, allowed))) as StoredResponse)
        if (replay === undefined) throw new Error('a stored response replayed as nothing')
        expect(replay.status).toBe(s)
        expect(replay.headers).toEqual([...h.filter(([name]) => allowed.has(name)), ['idempotent-replayed', 'true']])
        expect(Buffer.from(replay.body).equals(Buffer.from(copy))).toBe(true)
        // Encoding read the body without changing it.
        expect(Buffer.from(bytes).equals(Buffer.from(copy))).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  it('keeps repeated headers (set-cookie) as separate values, in order', () => {
    fc.assert(
      fc.property(fc.array(headerValue, { minLength: 2, maxLength: 5 }), (cookies) => {
        const h = cookies.map((value): [string, string] => ['set-cookie', value])
        const stored = encodeResponse(200, h, new Uint8Array(), new Set(['set-cookie']))
        expect(decodeResponse(readBack(storedString(stored)) as StoredResponse)?.headers.slice(0, -1)).toEqual(h)
      }),
      { numRuns: 200 },
    )
  })

  /** The outcome of decoding `value`: a replay node:http can send, nothing (`x`), or the typed error. */
  function expectSafe(value: unknown): void {
    let replay: ReturnType<typeof decodeResponse>
    try {
      replay = decodeResponse(value as StoredResponse)
    } catch (error) {
      expect(error).toBeInstanceOf(StoredResponseError)
      return
    }
    if (replay === undefined) return
    expect(Number.isInteger(replay.status) && replay.status >= 100 && replay.status <= 599).toBe(true)
    expect(replay.body).toBeInstanceOf(Uint8Array)
    for (const [name, v] of replay.headers) {
      validateHeaderName(name)
      if (/^[\t\x20-\xff]*$/.test(v)) validateHeaderValue(name, v)
      else expect(v).not.toMatch(/[^\t\x20-\x7e\u0080-\uffff]/)
    }
  }

  it('refuses any stored value that is not a stored response with a StoredResponseError, never a crash', () => {
    const field = fc.oneof(fc.anything({ maxDepth: 2 }), fc.integer({ min: 0, max: 700 }), fc.base64String())
    const shaped = fc.record(
      {
        s: field,
        h: fc.oneof(field, fc.array(fc.oneof(field, fc.tuple(field, field), fc.tuple(headerName, fc.string())))),
        t: fc.oneof(field, fc.string({ unit: 'binary' })),
        b: field,
        x: field,
      },
      { requiredKeys: [] },
    )
    fc.assert(fc.property(fc.oneof(fc.anything(), shaped), expectSafe), { numRuns: 1500 })
  })

  it('refuses a corrupted stored string, or decodes it into something safe to send', () => {
    const original = fc
      .tuple(status, headers, body)
      .map(([s, h, bytes]) => storedString(encodeResponse(s, h, bytes, new Set(h.map(([name]) => name)))))
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.string({ unit: 'binary', maxLength: 4 }))
    fc.assert(
      fc.property(original, edit, (text, [at, cut, insert]) => {
        const i = at % (text.length + 1)
        const corrupted = text.slice(0, i) + insert + text.slice(i + cut)
        let value: unknown
        try {
          value = readBack(corrupted)
        } catch (error) {
          // Not JSON any more: the stored-outcome codec's own error, not this codec's.
          expect(error).toBeInstanceOf(SyntaxError)
          return
        }
        expectSafe(value)
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses the minimal corrupt records the properties found', () => {
    for (const value of [
      null,
      42,
      { s: 200 },
      { s: 200, h: [] },
      { s: 99999, h: [], t: '' },
      { s: 200, h: [['bad name', 'v']], t: '' },
      { s: 200, h: [['x-a', 'v\r\nx-injected: 1']], t: '' },
      { s: 200, h: [], t: 5 },
      { s: 200, h: [], b: '!!!!' },
      { s: 200, h: [], t: '\ud800' },
      { x: -1 },
    ]) {
      expect(() => decodeResponse(value as StoredResponse), JSON.stringify(value)).toThrow(StoredResponseError)
    }
  })
})
