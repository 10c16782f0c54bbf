import { describe, expect, it } from 'vitest'
import { canonicalJson, sha256 } from '../../core/fingerprint.js'
import { parseKeyHeader } from './key-header.js'
import { bodyDigest, requestFingerprint, scopeOf } from './request-identity.js'
import { decodeResponse, encodeResponse, storedSize } from './stored-response.js'

describe('parseKeyHeader', () => {
  it('takes a Structured Field string and unescapes it', () => {
    expect(parseKeyHeader('"abc"')).toEqual({ ok: true, key: 'abc' })
    expect(parseKeyHeader('"a \\"b\\" \\\\ c"')).toEqual({ ok: true, key: 'a "b" \\ c' })
    expect(parseKeyHeader('  "padded"  ')).toEqual({ ok: true, key: 'padded' })
  })

  it('takes a bare key such as a UUID', () => {
    expect(parseKeyHeader('8e03978e-40d5-43e8-bc93-6894a57f9324')).toEqual({
      ok: true,
      key: '8e03978e-40d5-43e8-bc93-6894a57f9324',
    })
  })

  it('is undefined when the header is absent', () => {
    expect(parseKeyHeader(undefined)).toBeUndefined()
  })

  it.each([
    ['', 'empty'],
    ['""', 'empty'],
    ['"open', 'no closing quote'],
    ['"a"b', 'after the closing quote'],
    ['"a\\nb"', 'may be escaped'],
    ['"tab\there"', 'not printable'],
    ['two words', 'bare key'],
    ['a,b', 'bare key'],
    ['caf\u00e9', 'bare key'],
    ['x'.repeat(256), 'more than 255'],
    [`"${'x'.repeat(256)}"`, 'more than 255'],
  ])('refuses %j (%s)', (value, reason) => {
    const parsed = parseKeyHeader(value)
    expect(parsed?.ok).toBe(false)
    expect(parsed?.ok === false && parsed.reason).toContain(reason)
  })

  it('accepts 255 characters and refuses a header sent twice', () => {
    expect(parseKeyHeader('k'.repeat(255))).toEqual({ ok: true, key: 'k'.repeat(255) })
    expect(parseKeyHeader(['a', 'b'])).toEqual({ ok: false, reason: 'the header was sent more than once' })
  })
})

describe('request identity', () => {
  const request = (body: unknown, contentType = 'application/json') => ({
    method: 'POST',
    url: '/orders?x=1',
    route: '/orders',
    headers: { 'content-type': contentType, 'x-version': '2' },
    body,
  })

  it('digests JSON canonically: raw bytes, reordered keys and a parsed object match', () => {
    const raw = bodyDigest(Buffer.from('{"b":2,"a":{"d":4,"c":3}}'), 'application/json')
    expect(bodyDigest(Buffer.from('{ "a": {"c":3,"d":4}, "b": 2 }'), 'application/json; charset=utf-8')).toBe(raw)
    expect(bodyDigest({ a: { c: 3, d: 4 }, b: 2 }, undefined)).toBe(raw)
    expect(bodyDigest(Buffer.from('{"b":3,"a":{"d":4,"c":3}}'), 'application/json')).not.toBe(raw)
  })

  it('digests other bodies by their bytes', () => {
    const a = bodyDigest(Buffer.from('{"b":2,"a":1}'), 'text/plain')
    expect(bodyDigest(Buffer.from('{"a":1,"b":2}'), 'text/plain')).not.toBe(a)
    expect(bodyDigest(Buffer.from([0xff, 0xfe]), 'application/json')).toMatch(/^bytes:/)
    expect(bodyDigest(Buffer.alloc(0), 'application/json')).toBe(bodyDigest(undefined, undefined))
  })

  it('fingerprints the method, the target, the chosen headers and the body', () => {
    const base = requestFingerprint(request({ a: 1 }), { a: 1 }, ['x-version'])
    expect(requestFingerprint(request({ a: 1 }), { a: 1 }, ['x-version'])).toBe(base)
    expect(requestFingerprint({ ...request({ a: 1 }), method: 'PATCH' }, { a: 1 }, ['x-version'])).not.toBe(base)
    expect(requestFingerprint({ ...request({ a: 1 }), url: '/orders?x=2' }, { a: 1 }, ['x-version'])).not.toBe(base)
    expect(requestFingerprint(request({ a: 1 }), { a: 2 }, ['x-version'])).not.toBe(base)
    const otherVersion = { ...request({ a: 1 }), headers: { 'x-version': '3' } }
    expect(requestFingerprint(otherVersion, { a: 1 }, ['x-version'])).not.toBe(base)
    expect(requestFingerprint(otherVersion, { a: 1 }, [])).toBe(requestFingerprint(request({ a: 1 }), { a: 1 }, []))
  })

  it('keeps the stored fingerprint format: SHA-256 of the canonical JSON of method, target, headers, body digest', () => {
    // Records written before an upgrade must still match their retries after it.
    const req = { ...request({ a: 1 }), headers: { 'x-version': ['2', '3'], 'content-type': 'application/json' } }
    const digest = bodyDigest({ b: 2, a: 1 }, 'application/json')
    const expected = sha256(canonicalJson([req.method, req.url, ['2, 3', null], digest]))
    expect(requestFingerprint(req, { b: 2, a: 1 }, ['x-version', 'x-absent'])).toBe(expected)
  })

  it('never keeps the principal in clear, and keeps principals, methods and routes apart', () => {
    const scope = scopeOf('http', 'Bearer s3cr3t-token', 'POST', '/orders')
    expect(scope).not.toContain('s3cr3t')
    expect(scope).toMatch(/^http\|[\w-]{27}\|POST \/orders$/)
    expect(scopeOf('http', 'Bearer other', 'POST', '/orders')).not.toBe(scope)
    expect(scopeOf('http', 'Bearer s3cr3t-token', 'PATCH', '/orders')).not.toBe(scope)
    expect(scopeOf('http', undefined, 'POST', '/orders')).toBe('http|anonymous|POST /orders')
  })

  it('hashes a route that would make the scope too long or not printable', () => {
    expect(scopeOf('http', undefined, 'POST', `/${'a'.repeat(300)}`)).toMatch(/^http\|anonymous\|POST #[\w-]{43}$/)
    expect(scopeOf('http', undefined, 'POST', '/caf\u00e9')).toMatch(/#/)
  })
})

describe('stored responses', () => {
  const allowed = new Set(['content-type'])

  it('keeps UTF-8 bodies as text and other bodies as base64, both byte-exact', () => {
    const text = encodeResponse(201, [['content-type', 'text/plain']], Buffer.from('héllo'), allowed)
    expect(text).toMatchObject({ s: 201, t: 'héllo' })
    const bytes = Buffer.from([0, 255, 128, 10])
    const binary = encodeResponse(200, [], bytes, allowed)
    expect(binary).toMatchObject({ b: bytes.toString('base64') })
    const replayed = decodeResponse(JSON.parse(JSON.stringify(binary)))
    expect(Buffer.from(replayed?.body ?? []).equals(bytes)).toBe(true)
  })

  it('keeps only allow-listed headers and marks the replay', () => {
    const stored = encodeResponse(
      200,
      [
        ['content-type', 'a/b'],
        ['set-cookie', 'x=1'],
      ],
      Buffer.alloc(0),
      allowed,
    )
    expect(decodeResponse(stored)?.headers).toEqual([
      ['content-type', 'a/b'],
      ['idempotent-replayed', 'true'],
    ])
  })

  it('bounds the stored size from above', () => {
    const stored = encodeResponse(200, [['content-type', 'a"b']], Buffer.from('q"\u0001é'.repeat(100)), allowed)
    const exact = Buffer.byteLength(JSON.stringify({ v: stored }))
    expect(storedSize(stored, 10)).toBeGreaterThanOrEqual(exact - 16)
    expect(storedSize(stored, 10 ** 6)).toBeGreaterThanOrEqual(exact - 16)
  })
})
