// The behavioural suite of the HTTP layer, run for every framework on every store. It speaks HTTP
// to a real server over a real socket (fetch), and counts the handler's executions.

import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpIdempotency, type HttpIdempotencyOptions } from '../../../src/http/index.js'
import type { IdempotencyStore } from '../../../src/index.js'
import { ALL_BYTES, AppState, FRAMEWORKS, type FrameworkRig, type RunningApp } from './test-apps.test-helper.js'

export interface StoreFixture {
  store: IdempotencyStore
  cleanup(): Promise<void>
}

export interface Sent {
  status: number
  headers: Headers
  bytes: Buffer
  text: string
}

export interface SendOptions {
  key?: string
  body?: unknown
  contentType?: string
  auth?: string
  method?: string
  headers?: Record<string, string>
}

/** Limits kept small so that oversize cases stay fast. */
export const LIMIT = 64 * 1024

/** The stores' own default result limit, and a response limit above it. */
const STORE_DEFAULT_LIMIT = 1024 * 1024
const ABOVE_STORE_LIMIT = 4 * 1024 * 1024

/**
 * `store` without its `maxResultBytes`: a store that does not declare its limit (a custom one),
 * so that only its `complete` can tell that a result is too large.
 */
export function withoutDeclaredLimit(store: IdempotencyStore): IdempotencyStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'maxResultBytes') return undefined
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

export async function send(base: string, path: string, options: SendOptions = {}): Promise<Sent> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.key !== undefined) headers['idempotency-key'] = options.key
  if (options.auth !== undefined) headers.authorization = options.auth
  let body: string | Uint8Array | undefined
  if (options.body instanceof Uint8Array) {
    body = options.body
    headers['content-type'] = options.contentType ?? 'application/octet-stream'
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] = options.contentType ?? 'application/json'
  }
  const response = await fetch(base + path, { method: options.method ?? 'POST', headers, body })
  const bytes = Buffer.from(await response.arrayBuffer())
  return { status: response.status, headers: response.headers, bytes, text: bytes.toString() }
}

export function expectProblem(sent: Sent, status: number, slug: string): void {
  expect(sent.status).toBe(status)
  expect(sent.headers.get('content-type')).toBe('application/problem+json')
  const problem = JSON.parse(sent.text)
  expect(problem).toMatchObject({ type: `urn:idem:problem:${slug}`, status })
  expect(typeof problem.title).toBe('string')
  expect(typeof problem.detail).toBe('string')
}

/** One framework's app over a fresh store, started before its tests and stopped after. */
export function appFixture(
  rig: FrameworkRig,
  createStore: () => Promise<StoreFixture>,
  options: Omit<HttpIdempotencyOptions, 'store'> = {},
) {
  const fixture = { state: new AppState(), url: '', core: undefined as unknown as HttpIdempotency }
  let app: RunningApp | undefined
  let storeFixture: StoreFixture | undefined
  beforeAll(async () => {
    storeFixture = await createStore()
    fixture.core = new HttpIdempotency({
      store: storeFixture.store,
      required: true,
      maxRequestBytes: LIMIT,
      maxResponseBytes: LIMIT,
      // A broken response releases its key this long after the connection closed.
      abandonAfter: '300ms',
      ...options,
    })
    app = await rig.start(fixture.core, fixture.state, LIMIT)
    fixture.url = app.url
  })
  afterAll(async () => {
    await app?.close()
    await storeFixture?.cleanup()
  })
  return fixture
}

/** The lean suite: every status and the guarantees, for each framework on the store `createStore` makes. */
export function describeHttpSuite(
  storeName: string,
  createStore: () => Promise<StoreFixture>,
  frameworks: readonly FrameworkRig[] = FRAMEWORKS,
): void {
  describe(`HttpIdempotency on ${storeName}`, () => {
    it("refuses a maxResponseBytes above the store's own limit, naming both", async () => {
      const fixture = await createStore()
      try {
        expect(() => new HttpIdempotency({ store: fixture.store, maxResponseBytes: ABOVE_STORE_LIMIT })).toThrow(
          RangeError,
        )
        expect(() => new HttpIdempotency({ store: fixture.store, maxResponseBytes: ABOVE_STORE_LIMIT })).toThrow(
          /maxResponseBytes.*4194304.*maxResultBytes.*1048576/,
        )
        // At or under the store's limit, and by default, it is accepted.
        expect(
          new HttpIdempotency({ store: fixture.store, maxResponseBytes: STORE_DEFAULT_LIMIT }).maxResponseBytes,
        ).toBe(STORE_DEFAULT_LIMIT)
        expect(new HttpIdempotency({ store: fixture.store }).maxResponseBytes).toBe(STORE_DEFAULT_LIMIT)
      } finally {
        await fixture.cleanup()
      }
    })
  })

  for (const rig of frameworks) {
    describe(`${rig.name} on ${storeName}`, () => {
      const app = appFixture(rig, createStore)
      // maxResponseBytes above the limit of a store that does not declare it: only its complete() refuses.
      const unbounded = appFixture(
        rig,
        async () => {
          const fixture = await createStore()
          return { ...fixture, store: withoutDeclaredLimit(fixture.store) }
        },
        { maxResponseBytes: ABOVE_STORE_LIMIT, lease: '500ms' },
      )

      it('never runs a handler twice when the store refuses its response as too large', async () => {
        const key = randomUUID()
        const before = unbounded.state.count('large')
        const storeErrors: unknown[] = []
        const off = unbounded.core.idem.on('store_error', (event) => storeErrors.push(event))
        try {
          const bytes = STORE_DEFAULT_LIMIT + STORE_DEFAULT_LIMIT / 4
          const first = await send(unbounded.url, `/large?bytes=${bytes}`, { key, body: {} })
          expect(first.status).toBe(200)
          expect(first.bytes.length).toBe(bytes)
          // The key is settled by the time the client has the response: no 409, no second run.
          expectProblem(
            await send(unbounded.url, `/large?bytes=${bytes}`, { key, body: {} }),
            500,
            'response-not-stored',
          )
          await new Promise((resolve) => setTimeout(resolve, 800))
          expectProblem(
            await send(unbounded.url, `/large?bytes=${bytes}`, { key, body: {} }),
            500,
            'response-not-stored',
          )
          expect(unbounded.state.count('large')).toBe(before + 1)
          expect(storeErrors).toEqual([
            expect.objectContaining({
              operation: 'complete',
              error: expect.objectContaining({ code: 'RESULT_TOO_LARGE' }),
            }),
          ])
        } finally {
          off()
        }
      })

      it('executes a new key once and replays the stored response byte-identical, without Set-Cookie', async () => {
        const key = randomUUID()
        const before = app.state.count('orders')
        const first = await send(app.url, '/orders', { key, body: { amount: 42, currency: 'EUR' } })
        expect(first.status).toBe(201)
        expect(first.headers.get('set-cookie')).toMatch(/^session=s\d+/)
        expect(first.headers.get('idempotent-replayed')).toBeNull()
        const again = await send(app.url, '/orders', { key, body: { currency: 'EUR', amount: 42 } })
        expect(again.status).toBe(201)
        expect(again.bytes.equals(first.bytes)).toBe(true)
        expect(again.headers.get('idempotent-replayed')).toBe('true')
        expect(again.headers.get('location')).toBe(first.headers.get('location'))
        expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'))
        expect(again.headers.get('set-cookie')).toBeNull()
        expect(app.state.count('orders')).toBe(before + 1)
      })

      it('replays a binary response byte-identical', async () => {
        const key = randomUUID()
        const first = await send(app.url, '/files', { key, body: ALL_BYTES })
        expect(first.status).toBe(200)
        expect(first.bytes.subarray(0, 256).equals(ALL_BYTES)).toBe(true)
        const again = await send(app.url, '/files', { key, body: ALL_BYTES })
        expect(again.bytes.equals(first.bytes)).toBe(true)
        expect(again.headers.get('content-type')).toBe('application/octet-stream')
        expect(again.headers.get('idempotent-replayed')).toBe('true')
      })

      it('answers 422 to the same key with a different body', async () => {
        const key = randomUUID()
        expect((await send(app.url, '/orders', { key, body: { amount: 1 } })).status).toBe(201)
        const before = app.state.count('orders')
        expectProblem(await send(app.url, '/orders', { key, body: { amount: 2 } }), 422, 'key-reused')
        expect(app.state.count('orders')).toBe(before)
      })

      it('executes 50 concurrent identical requests once; the others get 409 with Retry-After', async () => {
        const key = randomUUID()
        const before = app.state.count('slow')
        let open = () => {}
        app.state.gate = new Promise<void>((resolve) => {
          open = resolve
        })
        let settled = 0
        const requests = Array.from({ length: 50 }, () =>
          send(app.url, '/slow', { key, body: { same: true } }).finally(() => {
            settled++
          }),
        )
        // The one that holds the key waits at the gate; every other one is refused meanwhile.
        while (settled < 49) await new Promise((resolve) => setTimeout(resolve, 5))
        open()
        const responses = await Promise.all(requests)
        const conflicts = responses.filter((r) => r.status === 409)
        expect(responses.filter((r) => r.status === 201)).toHaveLength(1)
        expect(conflicts).toHaveLength(49)
        for (const conflict of conflicts) {
          expectProblem(conflict, 409, 'in-progress')
          expect(Number(conflict.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
          expect(Number(conflict.headers.get('retry-after'))).toBeLessThanOrEqual(5)
        }
        expect(app.state.count('slow')).toBe(before + 1)
      })

      it('releases the key on a 5xx, so that a retry executes and is then replayed', async () => {
        const key = randomUUID()
        const before = app.state.count('flaky')
        app.state.failNext = 1
        expect((await send(app.url, '/flaky', { key, body: {} })).status).toBe(500)
        const retry = await send(app.url, '/flaky', { key, body: {} })
        expect(retry.status).toBe(200)
        const replay = await send(app.url, '/flaky', { key, body: {} })
        expect(replay.headers.get('idempotent-replayed')).toBe('true')
        expect(replay.bytes.equals(retry.bytes)).toBe(true)
        expect(app.state.count('flaky')).toBe(before + 2)
      })

      it('releases the key when the handler crashes mid-response, so that a retry executes', async () => {
        const key = randomUUID()
        const before = app.state.count('crash')
        app.state.crashNext = 1
        await expect(send(app.url, '/crash', { key, body: {} })).rejects.toThrow()
        // The release may land just after the client saw the connection break.
        let retry = await send(app.url, '/crash', { key, body: {} })
        for (let i = 0; retry.status === 409 && i < 100; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20))
          retry = await send(app.url, '/crash', { key, body: {} })
        }
        expect(retry.status).toBe(200)
        expect(retry.text).toBe(`whole ${before + 2}`)
        expect(app.state.count('crash')).toBe(before + 2)
      })

      it('keeps the same key of different principals apart', async () => {
        const key = randomUUID()
        const before = app.state.count('orders')
        const alice = await send(app.url, '/orders', { key, auth: 'Bearer alice', body: { amount: 5 } })
        const bob = await send(app.url, '/orders', { key, auth: 'Bearer bob', body: { amount: 5 } })
        expect(alice.status).toBe(201)
        expect(bob.status).toBe(201)
        expect(bob.headers.get('idempotent-replayed')).toBeNull()
        expect(bob.text).not.toBe(alice.text)
        const aliceAgain = await send(app.url, '/orders', { key, auth: 'Bearer alice', body: { amount: 5 } })
        expect(aliceAgain.text).toBe(alice.text)
        expect(app.state.count('orders')).toBe(before + 2)
      })

      it('refuses a missing key and a malformed one with 400, without executing', async () => {
        const before = app.state.count('orders')
        expectProblem(await send(app.url, '/orders', { body: { amount: 1 } }), 400, 'missing-key')
        expectProblem(await send(app.url, '/orders', { key: 'x'.repeat(256), body: {} }), 400, 'invalid-key')
        expectProblem(await send(app.url, '/orders', { key: 'has space', body: {} }), 400, 'invalid-key')
        expect(app.state.count('orders')).toBe(before)
      })
    })
  }
}
