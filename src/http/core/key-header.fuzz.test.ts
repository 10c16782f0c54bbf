// Fuzzing the Idempotency-Key header: whatever a client sends ends in a valid key or a reason,
// and over a real socket in a 4xx (or the handler's answer), never a 5xx, a hang or a crash.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postWithHeaders, rawRequest } from '../../../test/support/fuzz/raw-http.test-helper.js'
import { validateKey } from '../../core/key.js'
import { MemoryStore } from '../../index.js'
import { withIdempotency } from '../node/node-handler.js'
import { HttpIdempotency } from './http-idempotency.js'
import { parseKeyHeader } from './key-header.js'

const PRINTABLE = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) })
/** Keys Idem accepts: printable ASCII, 1 to 255 characters. */
const validKey = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 255,
})
/** Any header text: bytes as node:http hands them over (latin1), any UTF-16, quotes and escapes, huge. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('"', '\\', ',', ';', '=', ' ', '\t', 'a', '\u00a0', '\ufeff', '\x00', '\x7f') }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
  validKey.map((key) => `"${key.replace(/["\\]/g, '\\$&')}"`),
  fc.tuple(validKey, PRINTABLE).map(([key, rest]) => `"${key.replace(/["\\]/g, '\\$&')}";${rest}`),
  fc.integer({ min: 200, max: 20_000 }).map((n) => 'k'.repeat(n)),
)
const anyHeader = fc.oneof(
  anyText,
  fc.array(anyText, { maxLength: 3 }),
  fc.oneof(fc.integer(), fc.double()),
  fc.constant(undefined),
)

/** The header text without HTTP's optional whitespace (SP, HTAB) around it. */
const stripOws = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, '')
const quote = (key: string) => `"${key.replace(/["\\]/g, '\\$&')}"`

describe('parseKeyHeader, fuzzed', () => {
  // Found by the property below it: String#trim dropped NBSP (and BOM, line separators) around a key.
  it('refuses a key with whitespace around it that is not HTTP whitespace, rather than trimming it', () => {
    expect(parseKeyHeader('=\u00a0')?.ok).toBe(false)
    expect(parseKeyHeader('\ufeffabc')?.ok).toBe(false)
    expect(parseKeyHeader('"abc"\u2028')?.ok).toBe(false)
    expect(parseKeyHeader(' \tabc\t ')).toEqual({ ok: true, key: 'abc' })
  })

  it('gives undefined, a valid key or a reason for any value, and never throws', () => {
    fc.assert(
      fc.property(anyHeader, (value) => {
        const parsed = parseKeyHeader(value)
        if (parsed === undefined) {
          expect(value === undefined || (Array.isArray(value) && value.length === 1 && value[0] === undefined)).toBe(
            true,
          )
        } else if (parsed.ok) {
          expect(validateKey(parsed.key)).toBe(parsed.key)
        } else {
          expect(parsed.reason).toMatch(/\S/)
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('never accepts a key out of text that holds anything but printable ASCII (nothing is dropped or trimmed away)', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const parsed = parseKeyHeader(text)
        if (parsed?.ok) expect(stripOws(text)).toMatch(/^[\x20-\x7e]+$/)
      }),
      { numRuns: 2000 },
    )
  })

  it('reads every valid key back from its quoted form, padded or not', () => {
    fc.assert(
      fc.property(validKey, fc.constantFrom('', ' ', '\t', ' \t '), (key, pad) => {
        expect(parseKeyHeader(`${pad}${quote(key)}${pad}`)).toEqual({ ok: true, key })
      }),
      { numRuns: 1000 },
    )
  })

  it('reads a bare key as it is, and refuses one with a space, a quote or a comma inside', () => {
    fc.assert(
      fc.property(validKey, (key) => {
        const parsed = parseKeyHeader(key)
        const bare = stripOws(key)
        if (bare.length > 0 && !bare.startsWith('"') && /^[^\s",]+$/.test(bare)) {
          expect(parsed).toEqual({ ok: true, key: bare })
        } else if (!bare.startsWith('"')) {
          expect(parsed?.ok).toBe(false)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses parameters after a quoted key, and two header lines however they arrive', () => {
    fc.assert(
      fc.property(validKey, validKey, PRINTABLE, (a, b, params) => {
        expect(parseKeyHeader(`${quote(a)};${params}`)?.ok).toBe(false)
        expect(parseKeyHeader([quote(a), quote(b)])?.ok).toBe(false)
        expect(parseKeyHeader(`${quote(a)}, ${quote(b)}`)?.ok).toBe(false)
      }),
      { numRuns: 500 },
    )
  })
})

describe('HttpIdempotency.decide on a malformed key, fuzzed', () => {
  const core = new HttpIdempotency({ store: new MemoryStore(), required: true })

  it('answers a 400 invalid-key problem without touching the store', async () => {
    await fc.assert(
      fc.asyncProperty(anyHeader, async (value) => {
        const parsed = parseKeyHeader(value)
        fc.pre(parsed !== undefined && !parsed.ok)
        const request = { method: 'POST', url: '/orders', route: '/orders', headers: { 'idempotency-key': value } }
        const decision = await core.decide(request as Parameters<typeof core.decide>[0])
        if (decision.action !== 'respond') throw new Error(`expected a problem, got ${decision.action}`)
        expect(decision.response.status).toBe(400)
        expect(decision.code).toBe('INVALID_KEY')
        expect(JSON.parse(Buffer.from(decision.response.body).toString())).toMatchObject({
          type: 'urn:idem:problem:invalid-key',
          status: 400,
        })
      }),
      { numRuns: 500 },
    )
  })
})

describe('the Idempotency-Key header over a real socket (node:http), fuzzed', () => {
  let server: Server
  let port: number
  let executions = 0

  beforeAll(async () => {
    const handler = withIdempotency({ store: new MemoryStore(), required: true }, (_req, res) => {
      executions++
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
    server = createServer((req, res) => void handler(req, res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  /** Header value bytes (no CR or LF, which would end the line): every other byte, control characters included. */
  const valueBytes = fc.oneof(
    fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes.filter((b) => b !== 0x0d && b !== 0x0a))),
    anyText.map((text) => Buffer.from(text.replace(/[\r\n]/g, ''), 'latin1')),
    validKey.map((key) => Buffer.from(quote(key))),
  )
  const headerName = fc.constantFrom('Idempotency-Key', 'idempotency-key', 'IDEMPOTENCY-KEY')
  const keyLines = fc.array(
    fc.tuple(headerName, valueBytes).map(([name, value]) => Buffer.concat([Buffer.from(`${name}: `), value])),
    { minLength: 1, maxLength: 3 },
  )

  it('answers every request with a 2xx or a 4xx: 400 for a malformed key, the handler for a valid one', async () => {
    await fc.assert(
      fc.asyncProperty(keyLines, async (lines) => {
        const before = executions
        const reply = await rawRequest(port, postWithHeaders('/orders', lines))
        expect(reply.status, `no status line in reply to ${JSON.stringify(lines.map(String))}`).toBeGreaterThan(0)
        expect(reply.status).toBeLessThan(500)
        if (reply.status >= 400) {
          expect(executions).toBe(before)
          return
        }
        // Through to the handler (or its replay): exactly one header line, holding a valid key.
        expect(lines).toHaveLength(1)
        const value = (lines[0] as Buffer).subarray((lines[0] as Buffer).indexOf(':') + 1).toString('latin1')
        expect(parseKeyHeader(stripOws(value))?.ok).toBe(true)
        expect(reply.status).toBe(201)
      }),
      { numRuns: 150 },
    )
  })

  it('answers a well-formed request with a malformed key with the invalid-key problem', async () => {
    await fc.assert(
      fc.asyncProperty(anyText, async (text) => {
        const value = stripOws(text.replace(/[^\t\x20-\x7e\x80-\xff]/g, ''))
        const parsed = parseKeyHeader(value)
        fc.pre(value !== '' && parsed !== undefined && !parsed.ok && value.length < 8000)
        const reply = await rawRequest(
          port,
          postWithHeaders('/orders', [Buffer.from(`Idempotency-Key: ${value}`, 'latin1')]),
        )
        expect(reply.status).toBe(400)
        expect(reply.headers).toContainEqual(['content-type', 'application/problem+json'])
        expect(JSON.parse(reply.body.toString())).toMatchObject({ type: 'urn:idem:problem:invalid-key' })
      }),
      { numRuns: 100 },
    )
  })

  it('answers a header over the server limit with a 4xx, not a crash', async () => {
    const reply = await rawRequest(
      port,
      postWithHeaders('/orders', [Buffer.from(`Idempotency-Key: ${'k'.repeat(20_000)}`)]),
    )
    expect(reply.status).toBeGreaterThanOrEqual(400)
    expect(reply.status).toBeLessThan(500)
  })
})
