// examples/http/koa.ts runs as written, and docs/koa.md shows it as it is.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MemoryStore } from 'idem'
import { describe, expect, it, vi } from 'vitest'
import { createApp, retriedPayment } from './koa.js'
import { chargeCount } from './payments.js'

describe('examples/http/koa.ts', () => {
  it('charges once per key and replays the payment to a retry', async () => {
    const server = createServer(createApp(new MemoryStore()).callback())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments`
    try {
      const post = (key?: string, amount = 42) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
          body: JSON.stringify({ amount, currency: 'EUR' }),
        })
      const key = randomUUID()
      const before = chargeCount()
      const first = await post(key)
      const firstBody = await first.text()
      const retry = await post(key)
      expect(first.status).toBe(201)
      expect(JSON.parse(firstBody)).toMatchObject({ amount: 42, currency: 'EUR' })
      expect(retry.status).toBe(201)
      expect(await retry.text()).toBe(firstBody)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(retry.headers.get('location')).toBe(first.headers.get('location'))
      expect(chargeCount()).toBe(before + 1)
      const reused = await post(key, 43)
      expect(reused.status).toBe(422)
      expect(reused.headers.get('content-type')).toBe('application/problem+json')
      const missing = await post()
      expect(missing.status).toBe(400)
      expect(missing.headers.get('content-type')).toBe('application/problem+json')
      expect(chargeCount()).toBe(before + 1)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('runs its own demonstration: a retried payment, charged once', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    try {
      expect(await retriedPayment()).toEqual({ charges: 1, replayed: true, same: true })
      expect(log).toHaveBeenCalledTimes(2)
    } finally {
      log.mockRestore()
    }
  })
})

it('docs/koa.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/koa.md', import.meta.url), 'utf8')
  const shown = [...doc.matchAll(/<!-- example: (examples\/http\/[\w.-]+) -->\n```ts\n([\s\S]*?)```/g)]
  expect(shown.map(([, path]) => path)).toEqual(['examples/http/koa.ts'])
  for (const [, path, code] of shown) {
    expect(code, path).toBe(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'))
  }
})
