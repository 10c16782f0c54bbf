// Fuzzing the request identity: the body digest of raw JSON and of a body parser's value agree
// whatever the key order and spacing, different requests fingerprint differently, and every scope
// is a valid one whatever the principal and route.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { jsonEqual, jsonValue, reordered, shuffleWith } from '../../../test/support/fuzz/json.test-helper.js'
import { validateKey } from '../../core/key.js'
import { bodyDigest, requestFingerprint, scopeOf } from './request-identity.js'
import type { HttpRequest } from './types.js'

const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/problem+json',
  'APPLICATION/JSON',
]
const METHODS = ['POST', 'PATCH', 'PUT', 'DELETE', 'GET']

describe('bodyDigest, fuzzed', () => {
  // A top-level string or null is left out: a body parser's 'abc' is digested as the bytes abc and
  // raw "abc" as JSON (so a parser's "42" and 42 collide), a parser's null as no body and raw null as JSON.
  const jsonBody = jsonValue.filter((value) => typeof value !== 'string' && value !== null)

  it('digests raw JSON in any key order and spacing as the parsed value', () => {
    fc.assert(
      fc.property(
        jsonBody,
        fc.integer(),
        fc.constantFrom('', ' ', '\t', '\n  '),
        fc.constantFrom(...JSON_TYPES),
        (value, seed, space, type) => {
          const raw = Buffer.from(JSON.stringify(reordered(value, shuffleWith(seed)), null, space))
          expect(bodyDigest(raw, type)).toBe(bodyDigest(value, type))
          expect(bodyDigest(raw.toString(), type)).toBe(bodyDigest(value, type))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('digests different JSON bodies differently', () => {
    fc.assert(
      fc.property(jsonBody, jsonBody, (a, b) => {
        fc.pre(!jsonEqual(a, b))
        expect(bodyDigest(a, 'application/json')).not.toBe(bodyDigest(b, 'application/json'))
      }),
      { numRuns: 500 },
    )
  })

  it('digests any bytes under any content type without throwing, different bytes differently', () => {
    const type = fc.option(fc.oneof(fc.constantFrom(...JSON_TYPES), fc.string({ unit: 'binary', maxLength: 30 })), {
      nil: undefined,
    })
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), type, (a, b, contentType) => {
        const da = bodyDigest(a, contentType)
        expect(da).toMatch(/^(empty|bytes:|json:)/)
        if (!contentType?.includes('json') && Buffer.compare(a, b) !== 0)
          expect(da).not.toBe(bodyDigest(b, contentType))
      }),
      { numRuns: 500 },
    )
  })
})

describe('requestFingerprint and scopeOf, fuzzed', () => {
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    fc.integer(),
    fc.constant(undefined),
  )
  const request = fc.record({
    method: fc.constantFrom(...METHODS),
    url: fc.string({ unit: 'binary', maxLength: 40 }),
    route: fc.string({ unit: 'binary', maxLength: 300 }),
    headers: fc.dictionary(fc.constantFrom('x-a', 'x-b', 'content-type', 'authorization'), header),
  }) as fc.Arbitrary<HttpRequest>

  it('fingerprints any request, and tells apart requests whose method, target or selected headers differ', () => {
    fc.assert(
      fc.property(request, request, jsonBody(), (a, b, body) => {
        const names = ['x-a', 'x-b']
        const fa = requestFingerprint(a, body, names)
        expect(fa).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const same =
          a.method === b.method &&
          a.url === b.url &&
          names.every((n) => headerText(a.headers[n]) === headerText(b.headers[n])) &&
          headerText(a.headers['content-type']) === headerText(b.headers['content-type'])
        if (!same && a.headers['content-type'] === undefined && b.headers['content-type'] === undefined) {
          expect(requestFingerprint(b, body, names)).not.toBe(fa)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('makes a valid scope of any principal and route, and different ones of different routes', () => {
    const principal = fc.option(fc.string({ unit: 'binary', maxLength: 80 }), { nil: undefined })
    fc.assert(
      fc.property(principal, fc.constantFrom(...METHODS), request, request, (who, method, a, b) => {
        const scope = scopeOf('http', who, method, a.route)
        expect(validateKey(scope, 'scope')).toBe(scope)
        if (a.route !== b.route) expect(scopeOf('http', who, method, b.route)).not.toBe(scope)
      }),
      { numRuns: 500 },
    )
  })
})

function headerText(value: unknown): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : String(value)
}

function jsonBody(): fc.Arbitrary<unknown> {
  return fc.option(jsonValue, { nil: undefined })
}
