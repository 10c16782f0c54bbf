// Stored responses encrypted at rest, and principals hashed with a secret: over a real node:http
// server, on MemoryStore and on Redis.

import { createHmac, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { flipCharacter, readResult, writeResult } from '../../../test/support/core/stored-result.test-helper.js'
import type { StoreFixture } from '../../../test/support/http/http-suite.test-helper.js'
import { memoryFixture, redisFixture } from '../../../test/support/http/store-fixtures.test-helper.js'
import type { IdempotencyStore } from '../../contract/types.js'
import type { EncryptionOptions } from '../../core/encryption.js'
import { sha256 } from '../../core/fingerprint.js'
import { Idempotency } from '../../core/idempotency.js'
import { recordId } from '../../core/key.js'
import { EncryptionConfigError, ErrorCode } from '../../errors.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { withIdempotency } from '../node/node-handler.js'
import { HttpIdempotency } from './http-idempotency.js'
import type { HttpIdempotencyOptions } from './options.js'
import { scopeOf } from './request-identity.js'
import { DEFAULT_REPLAY_HEADERS } from './stored-response.js'

const ENCRYPTION: EncryptionOptions = { keys: { k1: randomBytes(32) }, current: 'k1' }
const SECRET_TEXT = 'iban-DE89370400440532013000'
/** Every byte value, and a UTF-8 body: the two stored forms of a response body (base64 and text). */
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

let servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  servers = []
})

/** A node:http server whose POST /pay answers a JSON body with headers, and /bin the binary body. */
async function serve(options: HttpIdempotencyOptions): Promise<{ base: string; executions: () => number }> {
  let executions = 0
  const handler = withIdempotency(options, (req, res) => {
    executions++
    if (req.url === '/bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', etag: `"v${executions}"` })
      res.end(BINARY)
      return
    }
    res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', location: `/pay/${executions}` })
    res.end(JSON.stringify({ n: executions, iban: SECRET_TEXT, note: 'caf\u00e9 \u{1f600}' }))
  })
  const server = createServer((req, res) => void handler(req, res))
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, executions: () => executions }
}

async function post(base: string, path: string, key: string, authorization?: string) {
  const headers: Record<string, string> = { 'idempotency-key': key, 'content-type': 'application/json' }
  if (authorization !== undefined) headers.authorization = authorization
  const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: '{"amount":1}' })
  const body = Buffer.from(await response.arrayBuffer())
  const kept = [...response.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name))
  return { status: response.status, headers: kept, body }
}

function describeReplay(name: string, fixture: () => Promise<StoreFixture>): void {
  describe(`encrypted stored responses on ${name}`, () => {
    it('replays status, headers and body byte for byte, and stores none of it in the clear', async () => {
      const { store, cleanup } = await fixture()
      try {
        const { base, executions } = await serve({ store, encryption: ENCRYPTION })
        for (const path of ['/pay', '/bin']) {
          const first = await post(base, path, `key${path}`)
          const again = await post(base, path, `key${path}`)
          expect(again.status).toBe(first.status)
          expect(again.body.equals(first.body)).toBe(true)
          const replayable = ([name]: [string, string]) => DEFAULT_REPLAY_HEADERS.includes(name)
          expect(again.headers.filter(replayable)).toEqual(first.headers.filter(replayable))
          expect(again.headers).toContainEqual(['idempotent-replayed', 'true'])
          const id = recordId(scopeOf('http', undefined, 'POST', path), `key${path}`)
          const { result } = await readResult(store, id)
          expect(result).toMatch(/^e1:k1:/)
          expect(result).not.toContain(SECRET_TEXT)
          expect(result).not.toContain('/pay/1')
        }
        expect(executions()).toBe(2)
      } finally {
        await cleanup()
      }
    })
  })
}

describeReplay('MemoryStore', memoryFixture)
if (await requireService('Redis', SERVICES.Redis.port))
  describeReplay('RedisStore', () => redisFixture('idem_http_enc'))

describe('the HTTP encryption option', () => {
  it('takes encryption with a store, or through the idem, never both', async () => {
    const store = new MemoryStore()
    expect(new HttpIdempotency({ store, encryption: ENCRYPTION }).idem.encryptionKeyId).toBe('k1')
    const idem = new Idempotency({ store, encryption: ENCRYPTION })
    expect(new HttpIdempotency({ idem }).idem.encryptionKeyId).toBe('k1')
    expect(() => new HttpIdempotency({ idem, encryption: ENCRYPTION })).toThrow(TypeError)
    expect(() => new HttpIdempotency({ store, encryption: { keys: {}, current: 'k1' } })).toThrow(EncryptionConfigError)
  })

  it('never replays an altered stored response, nor runs the handler again: it answers a 500 problem', async () => {
    const store = new MemoryStore()
    const http = new HttpIdempotency({ store, encryption: ENCRYPTION })
    const request = () => ({
      method: 'POST',
      url: '/pay',
      route: '/pay',
      headers: { 'idempotency-key': 'tampered' },
      body: Buffer.from('{}'),
    })
    const decision = await http.decide(request())
    if (decision.action !== 'proceed') throw new Error(`expected to proceed, got ${decision.action}`)
    decision.capture.write('ok')
    await decision.capture.end(201, [['content-type', 'text/plain']])
    expect((await http.decide(request())).action).toBe('respond')
    const id = recordId(scopeOf('http', undefined, 'POST', '/pay'), 'tampered')
    const { result, fingerprint } = await readResult(store, id)
    await writeResult(store, id, fingerprint, flipCharacter(result))
    const answer = await http.decide(request())
    if (answer.action !== 'respond') throw new Error(`expected a problem, got ${answer.action}`)
    expect(answer.code).toBe(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED)
    expect(answer.response.status).toBe(500)
    expect(JSON.parse(String(answer.response.body)).type).toBe('urn:idem:problem:stored-response-unreadable')
  })

  it('rejects, instead of leaving the request waiting, when a stored value is not a stored response', async () => {
    const store = new MemoryStore()
    const http = new HttpIdempotency({ store })
    const request = () => ({ method: 'POST', url: '/pay', route: '/pay', headers: { 'idempotency-key': 'odd' } })
    const decision = await http.decide(request())
    if (decision.action !== 'proceed') throw new Error(`expected to proceed, got ${decision.action}`)
    await decision.capture.end(201, [])
    const id = recordId(scopeOf('http', undefined, 'POST', '/pay'), 'odd')
    const { fingerprint } = await readResult(store, id)
    await writeResult(store, id, fingerprint, '{"v":{"s":200}}')
    await expect(http.decide(request())).rejects.toThrow(/stored response/i)
  })

  it('keeps a response whose sealed form is over maxResponseBytes as "not stored", never runs it twice', async () => {
    // About 170 bytes as plain JSON, about 270 once sealed: the same response fits 250 only in the clear.
    const limit = 250
    const plain = await serve({ store: new MemoryStore(), maxResponseBytes: limit })
    await post(plain.base, '/pay', 'over')
    expect((await post(plain.base, '/pay', 'over')).status).toBe(201)

    const store: IdempotencyStore = new MemoryStore()
    const { base, executions } = await serve({ store, encryption: ENCRYPTION, maxResponseBytes: limit })
    const first = await post(base, '/pay', 'over')
    expect(first.status).toBe(201)
    const again = await post(base, '/pay', 'over')
    expect(again.status).toBe(500)
    expect(JSON.parse(again.body.toString()).type).toBe('urn:idem:problem:response-not-stored')
    expect(executions()).toBe(1)
    const { result } = await readResult(store, recordId(scopeOf('http', undefined, 'POST', '/pay'), 'over'))
    expect(result.length).toBeLessThanOrEqual(limit)
  })
})

describe('principalSecret', () => {
  const secret = randomBytes(32)
  const hmac = (principal: string) =>
    createHmac('sha256', secret).update(`principal:${principal}`).digest('base64url').slice(0, 27)

  it('hashes the principal with HMAC-SHA-256 under the secret, and with SHA-256 as before without one', async () => {
    const store = new MemoryStore()
    const keyed = await serve({ store, principalSecret: secret })
    const plain = await serve({ store })
    await post(keyed.base, '/pay', 'same-key', 'Bearer tok-1')
    await post(plain.base, '/pay', 'same-key', 'Bearer tok-1')
    expect(await store.get(recordId(`http|${hmac('Bearer tok-1')}|POST /pay`, 'same-key'))).not.toBeNull()
    // Without a secret the scope is the one records stored so far were written under.
    const unchanged = `http|${sha256('principal:Bearer tok-1').slice(0, 27)}|POST /pay`
    expect(scopeOf('http', 'Bearer tok-1', 'POST', '/pay')).toBe(unchanged)
    expect(await store.get(recordId(unchanged, 'same-key'))).not.toBeNull()
    // Two records: with and without the secret, one principal is two scopes.
    expect(keyed.executions() + plain.executions()).toBe(2)
    expect(hmac('Bearer tok-1')).not.toBe(unchanged.split('|')[1])
  })

  it('keeps principals apart and anonymous requests anonymous', async () => {
    const store = new MemoryStore()
    const { base, executions } = await serve({ store, principalSecret: secret.toString('base64') })
    await post(base, '/pay', 'k', 'Bearer a')
    await post(base, '/pay', 'k', 'Bearer b')
    await post(base, '/pay', 'k', 'Bearer a')
    await post(base, '/pay', 'k')
    expect(executions()).toBe(3)
    expect(await store.get(recordId('http|anonymous|POST /pay', 'k'))).not.toBeNull()
  })

  it('refuses a secret under 32 bytes, or not a string or Buffer', () => {
    const store = new MemoryStore()
    for (const principalSecret of ['short', randomBytes(31), 42 as unknown as string]) {
      const error = (() => {
        try {
          new HttpIdempotency({ store, principalSecret })
        } catch (e) {
          return e
        }
      })()
      expect(error).toBeInstanceOf(EncryptionConfigError)
      expect(error).toMatchObject({ code: ErrorCode.ENCRYPTION_CONFIG_INVALID })
    }
  })
})
