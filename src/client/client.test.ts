// idempotentFetch against Idem's own Express middleware (MemoryStore) over real sockets: every
// retry carries the first attempt's key, so that a charge the server executed is replayed, never
// repeated, and what the client must not retry (400, 422) is not.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type DropProxy,
  type Shop,
  startBlackhole,
  startDropProxy,
  startShop,
} from '../../test/support/client/servers.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { IdempotencyKeyReusedError, IdempotentRequestError } from './errors.js'
import { idempotencyInfo, idempotentFetch } from './fetch.js'
import type { RetryEvent } from './policy.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let shop: Shop
let proxy: DropProxy
let orders = 0

beforeAll(async () => {
  shop = await startShop()
  proxy = await startDropProxy(shop.url)
})
afterAll(async () => {
  await proxy?.close()
  await shop?.close()
})
afterEach(() => {
  proxy.dropNext = 0
  shop.state.failNext = 0
  shop.state.limitNext = 0
  shop.state.gate = Promise.resolve()
})

/** A fresh order, so that each test counts its own charges on the shared server. */
function order(amount = 42): { order: string; amount: number } {
  return { order: `o${++orders}`, amount }
}

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }
}

/** A client with small waits, recording every retry. */
function client(options: Parameters<typeof idempotentFetch>[0] = {}) {
  const retries: RetryEvent[] = []
  const fetch = idempotentFetch({
    baseDelayMs: 10,
    maxDelayMs: 50,
    ...options,
    onRetry: (event) => {
      retries.push(event)
      options.onRetry?.(event)
    },
  })
  return { fetch, retries }
}

describe('idempotentFetch against the Express middleware', () => {
  it('sends a UUID key and answers with the response and its attempt info', async () => {
    const { fetch } = client()
    const body = order()
    const response = await fetch(`${shop.url}/charges`, post(body))
    expect(response.status).toBe(201)
    const info = idempotencyInfo(response)
    expect(info?.key).toMatch(UUID)
    expect(info).toMatchObject({ attempts: 1, replayed: false })
    expect(shop.state.keys.at(-1)).toBe(info?.key)
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('retries a request whose connection broke after the server executed it, with the same key, and gets the replay', async () => {
    const { fetch, retries } = client()
    const body = order()
    const before = shop.state.received.length
    proxy.dropNext = 1
    const response = await fetch(`${proxy.url}/charges`, post(body))
    expect(proxy.dropped).toBeGreaterThanOrEqual(1)
    expect(response.status).toBe(201)
    const info = idempotencyInfo(response)
    expect(info?.replayed).toBe(true)
    expect(response.headers.get('idempotent-replayed')).toBe('true')
    expect(await response.json()).toMatchObject({ order: body.order, execution: 1 })
    expect(shop.state.count(body.order)).toBe(1)
    const sent = shop.state.received.slice(before)
    expect(sent.length).toBeGreaterThanOrEqual(2)
    expect(new Set(sent)).toEqual(new Set([info?.key]))
    expect(retries[0]).toMatchObject({ key: info?.key, attempt: 1 })
    expect(retries[0]?.error).toBeDefined()
  })

  it('buffers a stream body so that the retry sends the same bytes', async () => {
    const { fetch } = client()
    const body = order()
    const bytes = new TextEncoder().encode(JSON.stringify(body))
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 5))
        controller.enqueue(bytes.subarray(5))
        controller.close()
      },
    })
    proxy.dropNext = 1
    const response = await fetch(`${proxy.url}/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit)
    expect(response.status).toBe(201)
    expect(idempotencyInfo(response)?.replayed).toBe(true)
    expect(await response.json()).toMatchObject({ order: body.order, amount: 42, execution: 1 })
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('waits out 409 in-progress while the first request runs, then gets its replay', async () => {
    let release = () => {}
    shop.state.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const body = order()
    const key = crypto.randomUUID()
    const started = shop.state.started
    // Another tab sent the same operation first and is still running it.
    const first = globalThis.fetch(`${shop.url}/charges`, post(body, { 'idempotency-key': key }))
    await until('the first request to run', async () => shop.state.started > started)
    const { fetch, retries } = client({
      onRetry: (event) => {
        if (event.status === 409) release()
      },
    })
    const response = await fetch(`${shop.url}/charges`, { ...post(body), idempotencyKey: key })
    expect((await first).status).toBe(201)
    expect(response.status).toBe(201)
    expect(idempotencyInfo(response)?.replayed).toBe(true)
    expect(retries.some((event) => event.status === 409)).toBe(true)
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('honours Retry-After on 429', async () => {
    shop.state.limitNext = 1
    shop.state.limitRetryAfter = '1'
    const { fetch, retries } = client({ maxDelayMs: 5000 })
    const body = order()
    const started = Date.now()
    const response = await fetch(`${shop.url}/limited`, post(body))
    expect(response.status).toBe(201)
    expect(Date.now() - started).toBeGreaterThanOrEqual(950)
    expect(retries.map(({ status, delayMs }) => ({ status, delayMs }))).toEqual([{ status: 429, delayMs: 1000 }])
    expect(idempotencyInfo(response)).toMatchObject({ attempts: 2, replayed: false })
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('caps a long Retry-After at maxDelayMs', async () => {
    shop.state.limitNext = 1
    shop.state.limitRetryAfter = '30'
    const { fetch, retries } = client({ maxDelayMs: 80 })
    const started = Date.now()
    const response = await fetch(`${shop.url}/limited`, post(order()))
    expect(response.status).toBe(201)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(retries.map((event) => event.delayMs)).toEqual([80])
  })

  it('retries 503 with the same key until the server succeeds', async () => {
    shop.state.failNext = 2
    const { fetch, retries } = client()
    const body = order()
    const before = shop.state.received.length
    const response = await fetch(`${shop.url}/flaky`, post(body))
    expect(response.status).toBe(201)
    const info = idempotencyInfo(response)
    expect(info).toMatchObject({ attempts: 3, replayed: false })
    expect(retries.map((event) => event.status)).toEqual([503, 503])
    expect(shop.state.received.slice(before)).toEqual([info?.key, info?.key, info?.key])
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('returns the last answer when the attempts run out', async () => {
    shop.state.failNext = 10
    const { fetch } = client({ maxAttempts: 3 })
    const response = await fetch(`${shop.url}/flaky`, post(order()))
    expect(response.status).toBe(503)
    expect(idempotencyInfo(response)?.attempts).toBe(3)
  })

  it('throws IdempotencyKeyReusedError, with the problem, when the server answers 422 key-reused', async () => {
    const key = crypto.randomUUID()
    const first = await globalThis.fetch(`${shop.url}/charges`, post(order(1), { 'idempotency-key': key }))
    expect(first.status).toBe(201)
    const before = shop.state.received.length
    const { fetch, retries } = client()
    const error = await fetch(`${shop.url}/charges`, post(order(2), { 'idempotency-key': key })).catch((e) => e)
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError)
    expect(error).toMatchObject({
      key,
      detectedBy: 'server',
      code: 'FINGERPRINT_MISMATCH',
      problem: { type: 'urn:idem:problem:key-reused', status: 422 },
    })
    expect(shop.state.received.length - before).toBe(1)
    expect(retries).toEqual([])
  })

  it('refuses the same key with another body before sending anything', async () => {
    const { fetch } = client()
    const key = crypto.randomUUID()
    const body = order()
    expect((await fetch(`${shop.url}/charges`, post(body, { 'idempotency-key': key }))).status).toBe(201)
    const before = shop.state.received.length
    const error = await fetch(`${shop.url}/charges`, post({ ...body, amount: 43 }, { 'idempotency-key': key })).catch(
      (e) => e,
    )
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError)
    expect(error).toMatchObject({ key, detectedBy: 'client' })
    expect(shop.state.received.length).toBe(before)
    // The same operation again is fine: the server replays it.
    const again = await fetch(`${shop.url}/charges`, { ...post(body), idempotencyKey: key })
    expect(idempotencyInfo(again)?.replayed).toBe(true)
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('does not retry a 400 (malformed key)', async () => {
    const { fetch, retries } = client()
    const response = await fetch(`${shop.url}/charges`, post(order(), { 'idempotency-key': 'two words' }))
    expect(response.status).toBe(400)
    expect(((await response.json()) as { type: string }).type).toBe('urn:idem:problem:invalid-key')
    expect(retries).toEqual([])
  })

  it('uses the key function and leaves uncovered methods alone', async () => {
    const { fetch } = client({ key: ({ method, url }) => `k-${method}-${new URL(url).pathname.slice(1)}-${orders}` })
    const body = order()
    const response = await fetch(`${shop.url}/charges`, post(body))
    expect(idempotencyInfo(response)?.key).toBe(`k-POST-charges-${orders}`)
    const before = shop.state.received.length
    const get = await fetch(`${shop.url}/charges`)
    expect(get.status).toBe(404)
    expect(shop.state.received.slice(before)).toEqual([''])
    expect(idempotencyInfo(get)).toBeUndefined()
  })

  it('stops at once when the caller aborts, in flight or between attempts', async () => {
    shop.state.gate = new Promise(() => {})
    const { fetch } = client()
    const inFlight = fetch(`${shop.url}/charges`, { ...post(order()), signal: AbortSignal.timeout(100) })
    await expect(inFlight).rejects.toMatchObject({ name: 'TimeoutError' })

    shop.state.failNext = 10
    const slow = client({ baseDelayMs: 5000, maxDelayMs: 5000, random: () => 0.99 })
    const controller = new AbortController()
    const started = Date.now()
    const waiting = slow.fetch(`${shop.url}/flaky`, { ...post(order()), signal: controller.signal })
    await until('the first 503', async () => slow.retries.length === 1)
    controller.abort(new Error('the user left'))
    await expect(waiting).rejects.toThrow('the user left')
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('retries an attempt that timed out with the same key', async () => {
    let release = () => {}
    shop.state.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const { fetch, retries } = client({
      attemptTimeoutMs: 150,
      onRetry: () => release(),
    })
    const body = order()
    const response = await fetch(`${shop.url}/charges`, post(body))
    expect(response.status).toBe(201)
    expect(retries[0]?.error).toMatchObject({ name: 'TimeoutError' })
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('gives up at the deadline with IdempotentRequestError', async () => {
    const hole = await startBlackhole()
    try {
      const { fetch } = client({ attemptTimeoutMs: 100, deadlineMs: 350 })
      const started = Date.now()
      const error = await fetch(`${hole.url}/charges`, post(order())).catch((e) => e)
      expect(error).toBeInstanceOf(IdempotentRequestError)
      expect(error).toMatchObject({ reason: 'deadline' })
      expect(error.attempts).toBeGreaterThanOrEqual(2)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(hole.connections).toBeGreaterThanOrEqual(2)
    } finally {
      await hole.close()
    }
  })

  it('throws IdempotentRequestError when every attempt fails', async () => {
    const hole = await startBlackhole()
    const url = hole.url
    await hole.close()
    const { fetch } = client({ maxAttempts: 3 })
    const error = await fetch(`${url}/charges`, post(order())).catch((e) => e)
    expect(error).toBeInstanceOf(IdempotentRequestError)
    expect(error).toMatchObject({ reason: 'attempts-exhausted', attempts: 3 })
  })
})
