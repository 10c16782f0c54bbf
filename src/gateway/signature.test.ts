import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { RedisStore } from '../stores/redis/redis-store.js'
import type { SignatureConfig } from './config/schema.js'
import {
  NONCE_HEADER,
  type NonceStore,
  SIGNATURE_HEADER,
  type SignedRequest,
  signRequest,
  storeNonces,
  TIMESTAMP_HEADER,
  verifySignature,
} from './signature.js'

const SECRET = 'a-secret-of-at-least-thirty-two-chars!'
const config: SignatureConfig = { secret: SECRET, window: 300_000 }
const NOW_MS = 1_750_000_000_000
const NOW_S = NOW_MS / 1000

/** A NonceStore that records what it was asked to remember. */
function recordingNonces(): NonceStore & { remembered: string[] } {
  const inner = storeNonces(new MemoryStore())
  const remembered: string[] = []
  return {
    remembered,
    remember(scope, nonce, ttlMs) {
      remembered.push(nonce)
      return inner.remember(scope, nonce, ttlMs)
    },
  }
}

function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}): SignedRequest {
  const input = { method: 'POST', url: '/orders?tenant=7', body: '{"amount":100}', secret: SECRET, timestamp: NOW_S }
  const merged = { ...input, ...overrides }
  return {
    method: merged.method,
    url: merged.url,
    headers: { 'content-type': 'application/json', ...signRequest(merged) },
    body: typeof merged.body === 'string' ? Buffer.from(merged.body) : (merged.body ?? new Uint8Array()),
  }
}

describe('signed requests', () => {
  it('a valid signature passes, and its nonce is remembered', async () => {
    const nonces = recordingNonces()
    const request = signed({ nonce: 'nonce-valid-0000001' })
    expect(await verifySignature(request, config, nonces, NOW_MS)).toEqual({ ok: true })
    expect(nonces.remembered).toEqual(['nonce-valid-0000001'])
  })

  it('signs the path and query of an absolute URL, and the method whatever its case', async () => {
    const request = signed({ url: 'http://gateway.example:8080/orders?tenant=7', method: 'post' })
    expect(
      await verifySignature({ ...request, url: '/orders?tenant=7', method: 'POST' }, config, recordingNonces(), NOW_MS),
    ).toEqual({ ok: true })
  })

  it.each([
    ['stale timestamp', signed({ timestamp: NOW_S - 301 }), /old/],
    ['future timestamp', signed({ timestamp: NOW_S + 301 }), /in the future/],
    ['tampered body', { ...signed(), body: Buffer.from('{"amount":999}') }, /does not match/],
    ['tampered path', { ...signed(), url: '/refunds?tenant=7' }, /does not match/],
    ['tampered query', { ...signed(), url: '/orders?tenant=8' }, /does not match/],
    ['tampered method', { ...signed(), method: 'PUT' }, /does not match/],
    ['wrong secret', signed({ secret: 'another-secret-of-at-least-32-chars!!' }), /does not match/],
  ])('%s is refused as BAD_SIGNATURE, and its nonce is not remembered', async (_, request, detail) => {
    const nonces = recordingNonces()
    const verdict = await verifySignature(request, config, nonces, NOW_MS)
    expect(verdict).toMatchObject({ ok: false, problem: 'BAD_SIGNATURE', detail: expect.stringMatching(detail) })
    expect(nonces.remembered).toEqual([])
  })

  it('accepts a timestamp at the edge of the window either way', async () => {
    expect((await verifySignature(signed({ timestamp: NOW_S - 300 }), config, recordingNonces(), NOW_MS)).ok).toBe(true)
    expect((await verifySignature(signed({ timestamp: NOW_S + 300 }), config, recordingNonces(), NOW_MS)).ok).toBe(true)
  })

  it('refuses missing, repeated and malformed headers', async () => {
    const good = signed()
    const without = (name: string) => ({ ...good, headers: { ...good.headers, [name]: undefined } })
    const cases: [SignedRequest, RegExp][] = [
      [without(TIMESTAMP_HEADER), /x-idem-timestamp header is missing/],
      [without(NONCE_HEADER), /x-idem-nonce header is missing/],
      [without(SIGNATURE_HEADER), /x-idem-signature header is missing/],
      [
        { ...good, headers: { ...good.headers, [NONCE_HEADER]: ['a'.repeat(16), 'b'.repeat(16)] } },
        /sent more than once/,
      ],
      [{ ...good, headers: { ...good.headers, [NONCE_HEADER]: 'short' } }, /16-128 characters/],
      [{ ...good, headers: { ...good.headers, [TIMESTAMP_HEADER]: '17e8' } }, /unix seconds/],
      [
        {
          ...good,
          headers: { ...good.headers, [SIGNATURE_HEADER]: String(good.headers[SIGNATURE_HEADER]).toUpperCase() },
        },
        /64 lowercase hex/,
      ],
      [{ ...good, headers: { ...good.headers, [SIGNATURE_HEADER]: 'ab' } }, /64 lowercase hex/],
    ]
    for (const [request, detail] of cases) {
      expect(await verifySignature(request, config, recordingNonces(), NOW_MS)).toMatchObject({
        ok: false,
        problem: 'BAD_SIGNATURE',
        detail: expect.stringMatching(detail),
      })
    }
  })

  it('a nonce used once is refused the second time (NONCE_REUSED), even on a valid signature', async () => {
    const nonces = storeNonces(new MemoryStore())
    const first = signed({ nonce: 'nonce-reused-000001' })
    expect(await verifySignature(first, config, nonces, NOW_MS)).toEqual({ ok: true })
    const again = signed({ nonce: 'nonce-reused-000001', timestamp: NOW_S + 1 })
    expect(await verifySignature(again, config, nonces, NOW_MS + 1000)).toMatchObject({
      ok: false,
      problem: 'NONCE_REUSED',
    })
  })

  it('a nonce burnt by a bad signature is still free for the real request', async () => {
    const nonces = storeNonces(new MemoryStore())
    const forged = signed({ nonce: 'nonce-forged-000001', secret: 'not-the-secret-but-long-enough-to-pass' })
    expect((await verifySignature(forged, config, nonces, NOW_MS)).ok).toBe(false)
    expect(await verifySignature(signed({ nonce: 'nonce-forged-000001' }), config, nonces, NOW_MS)).toEqual({
      ok: true,
    })
  })

  it('remembers a nonce for as long as its timestamp can pass (and then lets it go)', async () => {
    let clock = NOW_MS
    const nonces = storeNonces(new MemoryStore({ clock: () => clock }))
    // Stamped a whole window ahead: acceptable until NOW + 2 windows.
    const request = signed({ nonce: 'nonce-future-000001', timestamp: NOW_S + 300 })
    expect((await verifySignature(request, config, nonces, clock)).ok).toBe(true)
    clock = NOW_MS + 2 * config.window
    expect(await verifySignature(request, config, nonces, clock)).toMatchObject({ problem: 'NONCE_REUSED' })
    // Past that, its timestamp fails anyway, and the record is gone: a fresh request may reuse the nonce.
    clock = NOW_MS + 4 * config.window
    expect(await verifySignature(request, config, nonces, clock)).toMatchObject({ problem: 'BAD_SIGNATURE' })
    const fresh = signed({ nonce: 'nonce-future-000001', timestamp: clock / 1000 })
    expect(await verifySignature(fresh, config, nonces, clock)).toEqual({ ok: true })
  })

  it('signRequest refuses a malformed nonce', () => {
    expect(() => signRequest({ method: 'POST', url: '/', secret: SECRET, nonce: 'bad nonce' })).toThrow(/nonce/)
  })
})

if (await requireService('Redis', SERVICES.Redis.port)) {
  const clients = [0, 1].map(() => {
    const client = new Redis(SERVICES.Redis.url, { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    return client
  })
  afterAll(() => Promise.all(clients.map((c) => c.quit())))

  describe('nonces shared through one Redis store', () => {
    it('a nonce used through one replica is refused by another', async () => {
      const prefix = `${isolatedName('idem_sig')}:`
      const replicaA = storeNonces(new RedisStore({ client: clients[0] as Redis, prefix }))
      const replicaB = storeNonces(new RedisStore({ client: clients[1] as Redis, prefix }))
      const now = Date.now()
      const request = signed({ nonce: `nonce-${isolatedName('shared')}`, timestamp: Math.floor(now / 1000) })
      const verdicts = await Promise.all([
        verifySignature(request, config, replicaA, now),
        verifySignature(request, config, replicaB, now),
      ])
      expect(verdicts.map((v) => (v.ok ? 'ok' : v.problem)).sort()).toEqual(['NONCE_REUSED', 'ok'])
      expect(await verifySignature(request, config, replicaA, now)).toMatchObject({ problem: 'NONCE_REUSED' })
    })
  })
}
