// idempotencyInterceptor on an undici Agent, against Idem's Express middleware over real sockets:
// the same policy as idempotentFetch, through request() and undici's fetch().

import { Readable } from 'node:stream'
import { Agent, type Dispatcher, request, fetch as undiciFetch } from 'undici'
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
import type { RetryEvent, RetryPolicyOptions } from './policy.js'
import { idempotencyInterceptor } from './undici.js'

let shop: Shop
let proxy: DropProxy
let orders = 0
const agents: Agent[] = []

beforeAll(async () => {
  shop = await startShop()
  proxy = await startDropProxy(shop.url)
})
afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()))
  await proxy?.close()
  await shop?.close()
})
afterEach(() => {
  proxy.dropNext = 0
  shop.state.failNext = 0
})

function order(amount = 42): { order: string; amount: number } {
  return { order: `u${++orders}`, amount }
}

function dispatcher(options: RetryPolicyOptions = {}): { dispatcher: Dispatcher; retries: RetryEvent[] } {
  const retries: RetryEvent[] = []
  const agent = new Agent()
  agents.push(agent)
  const composed = agent.compose(
    idempotencyInterceptor({ baseDelayMs: 10, maxDelayMs: 50, ...options, onRetry: (event) => retries.push(event) }),
  )
  return { dispatcher: composed, retries }
}

const json = { 'content-type': 'application/json' }

describe('idempotencyInterceptor', () => {
  it('retries a broken connection with the same key through request() and gets the replay', async () => {
    const { dispatcher: d, retries } = dispatcher()
    const body = order()
    const before = shop.state.received.length
    proxy.dropNext = 1
    const response = await request(`${proxy.url}/charges`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(body),
      dispatcher: d,
    })
    expect(response.statusCode).toBe(201)
    expect(response.headers['idempotent-replayed']).toBe('true')
    expect(await response.body.json()).toMatchObject({ order: body.order, execution: 1 })
    expect(shop.state.count(body.order)).toBe(1)
    const sent = shop.state.received.slice(before)
    expect(sent.length).toBeGreaterThanOrEqual(2)
    expect(new Set(sent).size).toBe(1)
    expect(retries[0]?.key).toBe(sent[0])
    expect(retries[0]?.error).toBeDefined()
  })

  it('buffers a stream body and retries 503 with it through undici fetch()', async () => {
    shop.state.failNext = 2
    const { dispatcher: d, retries } = dispatcher()
    const body = order()
    const text = JSON.stringify(body)
    const before = shop.state.received.length
    const response = await undiciFetch(`${shop.url}/flaky`, {
      method: 'POST',
      headers: json,
      body: Readable.from([text.slice(0, 4), text.slice(4)]),
      duplex: 'half',
      dispatcher: d,
    })
    expect(response.status).toBe(201)
    expect(await response.json()).toMatchObject({ order: body.order, amount: 42, execution: 1 })
    expect(retries.map((event) => event.status)).toEqual([503, 503])
    const sent = shop.state.received.slice(before)
    expect(sent).toEqual([sent[0], sent[0], sent[0]])
    expect(shop.state.count(body.order)).toBe(1)
  })

  it('surfaces a 422 key-reused as IdempotencyKeyReusedError and refuses another body before sending', async () => {
    const key = crypto.randomUUID()
    const first = await fetch(`${shop.url}/charges`, {
      method: 'POST',
      headers: { ...json, 'idempotency-key': key },
      body: JSON.stringify(order(1)),
    })
    expect(first.status).toBe(201)
    const { dispatcher: d, retries } = dispatcher()
    const send = (body: unknown) =>
      request(`${shop.url}/charges`, {
        method: 'POST',
        headers: { ...json, 'idempotency-key': key },
        body: JSON.stringify(body),
        dispatcher: d,
      })
    const other = order(2)
    const server = await send(other).catch((e) => e)
    expect(server).toBeInstanceOf(IdempotencyKeyReusedError)
    expect(server).toMatchObject({ detectedBy: 'server', problem: { type: 'urn:idem:problem:key-reused' } })
    expect(retries).toEqual([])
    const before = shop.state.received.length
    const local = await send({ ...other, amount: 3 }).catch((e) => e)
    expect(local).toBeInstanceOf(IdempotencyKeyReusedError)
    expect(local).toMatchObject({ detectedBy: 'client' })
    expect(shop.state.received.length).toBe(before)
  })

  it('passes a 422 that is not key-reused through untouched', async () => {
    const { dispatcher: d } = dispatcher()
    const hits: string[] = []
    shop.app.post('/validate', (_req, res) => {
      hits.push('validate')
      res.status(422).type('application/problem+json').send({ type: 'urn:shop:invalid-amount', status: 422 })
    })
    const response = await request(`${shop.url}/validate`, { method: 'POST', body: '{}', dispatcher: d })
    expect(response.statusCode).toBe(422)
    expect(await response.body.json()).toEqual({ type: 'urn:shop:invalid-amount', status: 422 })
    expect(hits).toEqual(['validate'])
  })

  it("respects the caller's AbortSignal between attempts", async () => {
    shop.state.failNext = 10
    const { dispatcher: d, retries } = dispatcher({ baseDelayMs: 5000, maxDelayMs: 5000, random: () => 0.99 })
    const controller = new AbortController()
    const started = Date.now()
    const pending = request(`${shop.url}/flaky`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(order()),
      dispatcher: d,
      signal: controller.signal,
    })
    await until('the first 503', async () => retries.length === 1)
    controller.abort(new Error('the user left'))
    await expect(pending).rejects.toThrow('the user left')
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('times attempts out, retries them, and gives up at the deadline', async () => {
    const hole = await startBlackhole()
    try {
      const { dispatcher: d, retries } = dispatcher({ attemptTimeoutMs: 100, deadlineMs: 350 })
      const started = Date.now()
      const error = await request(`${hole.url}/charges`, { method: 'POST', body: '{}', dispatcher: d }).catch((e) => e)
      expect(error).toBeInstanceOf(IdempotentRequestError)
      expect(error).toMatchObject({ reason: 'deadline' })
      expect(retries.length).toBeGreaterThanOrEqual(1)
      expect(retries[0]?.error).toMatchObject({ name: 'TimeoutError' })
      expect(Date.now() - started).toBeLessThan(1000)
    } finally {
      await hole.close()
    }
  })
})
