// The exhaustive HTTP cases, on MemoryStore only (the store-specific paths are in the suite run
// on every store): every framework, over a real socket.

import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import {
  appFixture,
  expectProblem,
  LIMIT,
  type StoreFixture,
  send,
} from '../../test/support/http/http-suite.test-helper.js'
import { ALL_KOA_RIGS } from '../../test/support/http/koa-rig.test-helper.js'
import { NEST_RIGS } from '../../test/support/http/nestjs-rig.test-helper.js'
import { FRAMEWORKS } from '../../test/support/http/test-apps.test-helper.js'
import { MemoryStore } from '../index.js'
import { DEFAULT_REPLAY_HEADERS } from './index.js'

const memory = async (): Promise<StoreFixture> => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// Koa's rigs too (both versions with the body parser before the middleware, after it and absent),
// and NestJS on its Express and Fastify platforms.
for (const rig of [...FRAMEWORKS, ...ALL_KOA_RIGS, ...NEST_RIGS]) {
  describe(`${rig.name}: edge cases`, () => {
    const app = appFixture(rig, memory)
    const lenient = appFixture(rig, memory, {
      required: false,
      onInProgress: 'wait',
      waitTimeout: '20s',
      replayHeaders: [...DEFAULT_REPLAY_HEADERS, 'set-cookie'],
      principal: (request) => request.headers['x-tenant'] as string | undefined,
      abandonAfter: '20s',
    })
    const faulty = new FaultyStore(new MemoryStore())
    const down = appFixture(rig, async () => ({ store: faulty, cleanup: () => faulty.close() }))
    const openStore = new FaultyStore(new MemoryStore())
    const failOpen = appFixture(rig, async () => ({ store: openStore, cleanup: () => openStore.close() }), {
      failOpen: true,
    })

    it('replays a non-ASCII text response byte-identical', async () => {
      const key = randomUUID()
      const first = await send(app.url, '/text', { key, body: {} })
      expect(first.text).toMatch(/^héllo ✓ \d+$/)
      const again = await send(app.url, '/text', { key, body: {} })
      expect(again.bytes.equals(first.bytes)).toBe(true)
      expect(again.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    })

    it('stores a 4xx response and replays it without executing again', async () => {
      const key = randomUUID()
      const before = app.state.count('missing')
      const first = await send(app.url, '/missing', { key, body: {} })
      expect(first.status).toBe(404)
      const again = await send(app.url, '/missing', { key, body: {} })
      expect(again.status).toBe(404)
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(again.bytes.equals(first.bytes)).toBe(true)
      expect(app.state.count('missing')).toBe(before + 1)
    })

    it('releases the key when the handler throws before responding', async () => {
      const key = randomUUID()
      const before = app.state.count('throw')
      app.state.throwNext = 1
      expect((await send(app.url, '/throw', { key, body: {} })).status).toBe(500)
      expect((await send(app.url, '/throw', { key, body: {} })).status).toBe(200)
      expect(app.state.count('throw')).toBe(before + 2)
    })

    it('takes a Structured Field string key and its bare form as the same key', async () => {
      const key = `k-${randomUUID()}`
      const before = app.state.count('orders')
      expect((await send(app.url, '/orders', { key: `"${key}"`, body: { a: 1 } })).status).toBe(201)
      const bare = await send(app.url, '/orders', { key, body: { a: 1 } })
      expect(bare.headers.get('idempotent-replayed')).toBe('true')
      expect((await send(app.url, '/orders', { key: `"with space ${key}"`, body: { a: 1 } })).status).toBe(201)
      expectProblem(await send(app.url, '/orders', { key: '"unterminated', body: {} }), 400, 'invalid-key')
      expectProblem(await send(app.url, '/orders', { key: `"${'k'.repeat(256)}"`, body: {} }), 400, 'invalid-key')
      expect(app.state.count('orders')).toBe(before + 2)
    })

    it('refuses a request body over the limit with 413, without executing', async () => {
      const before = app.state.count('files')
      const sent = await send(app.url, '/files', { key: randomUUID(), body: Buffer.alloc(LIMIT + 1, 7) })
      if (rig.frameworkBodyLimit) expect(sent.status).toBe(413)
      else expectProblem(sent, 413, 'request-too-large')
      expect(app.state.count('files')).toBe(before)
    })

    it('delivers a response over the size limit once, then answers 500 instead of executing again', async () => {
      const key = randomUUID()
      const before = app.state.count('big')
      const first = await send(app.url, `/big?bytes=${LIMIT + 1}`, { key, body: {} })
      expect(first.status).toBe(200)
      expect(first.bytes.length).toBe(LIMIT + 1)
      expectProblem(await send(app.url, `/big?bytes=${LIMIT + 1}`, { key, body: {} }), 500, 'response-not-stored')
      expect(app.state.count('big')).toBe(before + 1)
      // Under the limit, the same endpoint is stored and replayed.
      const small = randomUUID()
      const stored = await send(app.url, '/big?bytes=1000', { key: small, body: {} })
      expect((await send(app.url, '/big?bytes=1000', { key: small, body: {} })).bytes.equals(stored.bytes)).toBe(true)
    })

    it('passes methods it does not cover through untouched, key or not', async () => {
      const before = app.state.count('orders')
      expect((await send(app.url, '/orders', { method: 'GET' })).status).toBe(201)
      const key = randomUUID()
      expect((await send(app.url, '/orders', { method: 'PUT', key, body: {} })).status).toBe(201)
      expect(
        (await send(app.url, '/orders', { method: 'PUT', key, body: {} })).headers.get('idempotent-replayed'),
      ).toBe(null)
      expect(app.state.count('orders')).toBe(before + 3)
    })

    it('covers PATCH by default', async () => {
      const key = randomUUID()
      await send(app.url, '/orders', { method: 'PATCH', key, body: { p: 1 } })
      const again = await send(app.url, '/orders', { method: 'PATCH', key, body: { p: 1 } })
      expect(again.headers.get('idempotent-replayed')).toBe('true')
    })

    it('passes a request without a key when keys are optional', async () => {
      const before = lenient.state.count('orders')
      expect((await send(lenient.url, '/orders', { body: { a: 1 } })).status).toBe(201)
      expect((await send(lenient.url, '/orders', { body: { a: 1 } })).status).toBe(201)
      expect(lenient.state.count('orders')).toBe(before + 2)
    })

    it('waits for a running key and replays its response when onInProgress is wait', async () => {
      const key = randomUUID()
      const before = lenient.state.count('slow')
      let open = () => {}
      lenient.state.gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const first = send(lenient.url, '/slow', { key, body: {} })
      while (lenient.state.count('slow') === before) await sleep(5)
      const second = send(lenient.url, '/slow', { key, body: {} })
      await sleep(50)
      open()
      const [a, b] = await Promise.all([first, second])
      expect(a.status).toBe(201)
      expect(b.status).toBe(201)
      expect(b.headers.get('idempotent-replayed')).toBe('true')
      expect(b.bytes.equals(a.bytes)).toBe(true)
      expect(lenient.state.count('slow')).toBe(before + 1)
    })

    it('stores the response of a handler whose client left before it answered, and replays it', async () => {
      const key = randomUUID()
      const before = lenient.state.count('slow')
      let open = () => {}
      lenient.state.gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const client = new AbortController()
      const gone = fetch(`${lenient.url}/slow`, {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'application/json' },
        body: '{}',
        signal: client.signal,
      })
      while (lenient.state.count('slow') === before) await sleep(5)
      client.abort()
      await expect(gone).rejects.toThrow()
      await sleep(50)
      open()
      // The handler still ends its response; a retry then gets it, never a second execution.
      const retry = await send(lenient.url, '/slow', { key, body: {} })
      expect(retry.status).toBe(201)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(lenient.state.count('slow')).toBe(before + 1)
    })

    it('replays Set-Cookie when it is on the allow-list', async () => {
      const key = randomUUID()
      const first = await send(lenient.url, '/orders', { key, body: {} })
      const again = await send(lenient.url, '/orders', { key, body: {} })
      expect(again.headers.get('set-cookie')).toBe(first.headers.get('set-cookie'))
      expect(again.headers.get('set-cookie')).toMatch(/^session=/)
    })

    it('scopes keys by a custom principal', async () => {
      const key = randomUUID()
      const before = lenient.state.count('orders')
      const a = await send(lenient.url, '/orders', { key, body: {}, headers: { 'x-tenant': 'a' } })
      const b = await send(lenient.url, '/orders', { key, body: {}, headers: { 'x-tenant': 'b' } })
      expect(b.text).not.toBe(a.text)
      const again = await send(lenient.url, '/orders', { key, body: {}, headers: { 'x-tenant': 'a' } })
      expect(again.text).toBe(a.text)
      expect(lenient.state.count('orders')).toBe(before + 2)
    })

    it('answers 503 when the store fails (fail-closed), without executing', async () => {
      faulty.fail('begin', 1)
      const before = down.state.count('orders')
      const sent = await send(down.url, '/orders', { key: randomUUID(), body: {} })
      expectProblem(sent, 503, 'store-unavailable')
      expect(sent.headers.get('retry-after')).toBe('1')
      expect(down.state.count('orders')).toBe(before)
    })

    it('runs the handler unprotected when the store fails and failOpen is set', async () => {
      openStore.fail('begin', 1)
      const before = failOpen.state.count('orders')
      expect((await send(failOpen.url, '/orders', { key: randomUUID(), body: {} })).status).toBe(201)
      expect(failOpen.state.count('orders')).toBe(before + 1)
      expect(failOpen.core.idem.failOpenExecutions).toBe(1)
    })
  })
}
