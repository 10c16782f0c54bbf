// The HTTP examples run as written, and docs/http.md shows them as they are.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { MemoryStore } from 'idem'
import { describe, expect, it } from 'vitest'
import { createApp as expressApp } from './express.js'
import { createApp as fastifyApp } from './fastify.js'
import { createApp as honoApp } from './hono.js'
import { createApp as nodeApp } from './node.js'
import { chargeCount } from './payments.js'

const servers: Record<string, () => Promise<Server>> = {
  'node.ts': async () => nodeApp(new MemoryStore()),
  'express.ts': async () => createServer(expressApp(new MemoryStore())),
  'fastify.ts': async () => {
    const app = await fastifyApp(new MemoryStore())
    await app.ready()
    return app.server
  },
  'hono.ts': async () => createServer(getRequestListener(honoApp(new MemoryStore()).fetch)),
}

describe.each(Object.keys(servers))('examples/http/%s', (file) => {
  it('charges once per key and replays the payment to a retry', async () => {
    const server = await (servers[file] as () => Promise<Server>)()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments`
    try {
      const post = (key?: string) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
          body: JSON.stringify({ amount: 42, currency: 'EUR' }),
        })
      const key = randomUUID()
      const before = chargeCount()
      const first = await post(key)
      const firstBody = await first.text()
      const retry = await post(key)
      expect(first.status).toBe(201)
      expect(retry.status).toBe(201)
      expect(await retry.text()).toBe(firstBody)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      expect(retry.headers.get('location')).toBe(first.headers.get('location'))
      expect(chargeCount()).toBe(before + 1)
      const missing = await post()
      expect(missing.status).toBe(400)
      expect(missing.headers.get('content-type')).toBe('application/problem+json')
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

it('docs/http.md shows each example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/http.md', import.meta.url), 'utf8')
  const shown = [...doc.matchAll(/<!-- example: (examples\/http\/[\w.-]+) -->\n```ts\n([\s\S]*?)```/g)]
  expect(shown.map(([, path]) => path).sort()).toEqual(
    ['express.ts', 'fastify.ts', 'hono.ts', 'node.ts', 'redis.ts'].map((f) => `examples/http/${f}`),
  )
  for (const [, path, code] of shown) {
    expect(code, path).toBe(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'))
  }
})
