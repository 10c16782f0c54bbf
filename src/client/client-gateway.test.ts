// The client against the idempotency gateway (memory store) in front of the counting upstream:
// a connection broken after the gateway forwarded and stored the answer, a key in progress, and
// upstream 503s (which release the key), each counted by the upstream itself.

import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DropProxy, startDropProxy } from '../../test/support/client/servers.test-helper.js'
import { startUpstream, type Upstream } from '../../test/support/gateway/upstream.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { createGateway, type Gateway } from '../gateway/gateway.js'
import { idempotencyInfo, idempotentFetch } from './fetch.js'
import type { RetryEvent } from './policy.js'
import { idempotencyInterceptor } from './undici.js'

let upstream: Upstream
let gateway: Gateway
let gatewayUrl: string
let proxy: DropProxy
const agent = new Agent()

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await createGateway({
    listen: { port: 0 },
    upstream: { url: upstream.url, timeout: '5s' },
    stores: { main: { type: 'memory' } },
    defaults: { store: 'main' },
    routes: [
      { name: 'orders', match: { methods: ['POST'], path: '/orders' } },
      { name: 'slow', match: { methods: ['POST'], path: '/slow' } },
      { name: 'fail', match: { methods: ['POST'], path: '/fail' } },
    ],
  })
  gatewayUrl = (await gateway.listen()).url
  proxy = await startDropProxy(gatewayUrl)
}, 60_000)

afterAll(async () => {
  await agent.close()
  await proxy?.close()
  await gateway?.close()
  await upstream?.stop()
})

function client(maxAttempts = 5) {
  const retries: RetryEvent[] = []
  const fetch = idempotentFetch({
    maxAttempts,
    baseDelayMs: 10,
    maxDelayMs: 50,
    onRetry: (event) => retries.push(event),
  })
  return { fetch, retries }
}

/** The upstream counts executions by the body's `id`: one per operation. */
const post = (id: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ id }),
})

describe('idempotentFetch through the gateway', () => {
  it('gets the replay after the connection broke behind the gateway: the upstream ran once', async () => {
    const { fetch, retries } = client()
    const id = `drop-${crypto.randomUUID()}`
    proxy.dropNext = 1
    const response = await fetch(`${proxy.url}/orders`, post(id))
    expect(proxy.dropped).toBeGreaterThanOrEqual(1)
    expect(response.status).toBe(201)
    expect(idempotencyInfo(response)?.replayed).toBe(true)
    expect(await response.json()).toMatchObject({ echo: { id }, execution: 1 })
    expect(retries[0]?.error).toBeDefined()
    expect((await upstream.executions()).byKey[id]).toBe(1)
  })

  it('waits out 409 while another request holds the key, then gets its answer', async () => {
    // Retry-After is capped at 50 ms here: enough attempts to poll through the upstream's 300 ms.
    const { fetch, retries } = client(40)
    const id = `busy-${crypto.randomUUID()}`
    const key = crypto.randomUUID()
    const first = globalThis.fetch(`${gatewayUrl}/slow?ms=300`, {
      ...post(id),
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    })
    await until('the upstream to start', async () => (await upstream.executions()).byKey[id] === 1)
    const response = await fetch(`${gatewayUrl}/slow?ms=300`, { ...post(id), idempotencyKey: key })
    expect((await first).status).toBe(201)
    expect(response.status).toBe(201)
    expect(idempotencyInfo(response)?.replayed).toBe(true)
    expect(retries.some((event) => event.status === 409)).toBe(true)
    expect((await upstream.executions()).byKey[id]).toBe(1)
  })

  it('retries upstream 503s with the same key (the gateway releases it) and returns the last one', async () => {
    const retries: RetryEvent[] = []
    const fetch = idempotentFetch({
      maxAttempts: 3,
      baseDelayMs: 10,
      maxDelayMs: 50,
      onRetry: (event) => retries.push(event),
    })
    const id = `fail-${crypto.randomUUID()}`
    const response = await fetch(`${gatewayUrl}/fail`, post(id))
    expect(response.status).toBe(503)
    expect(idempotencyInfo(response)?.attempts).toBe(3)
    expect(retries.map((event) => event.status)).toEqual([503, 503])
    expect(new Set(retries.map((event) => event.key)).size).toBe(1)
    expect((await upstream.executions()).byKey[id]).toBe(3)
  })
})

describe('idempotencyInterceptor through the gateway', () => {
  it('gets the replay after a broken connection: the upstream ran once', async () => {
    const dispatcher = agent.compose(idempotencyInterceptor({ baseDelayMs: 10, maxDelayMs: 50 }))
    const id = `undici-${crypto.randomUUID()}`
    proxy.dropNext = 1
    const response = await request(`${proxy.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
      dispatcher,
    })
    expect(response.statusCode).toBe(201)
    expect(response.headers['idempotent-replayed']).toBe('true')
    expect(await response.body.json()).toMatchObject({ echo: { id }, execution: 1 })
    expect((await upstream.executions()).byKey[id]).toBe(1)
  })
})
