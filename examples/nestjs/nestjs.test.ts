// The NestJS example runs as written, on Nest's Express and Fastify platforms, and docs/nestjs.md
// shows it as it is.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { describe, expect, it } from 'vitest'
import { appModule, openDatabase } from './app.js'
import { demo } from './main.js'

describe.each(['Express', 'Fastify'])('examples/nestjs on the %s platform', (platform) => {
  it('pays once per order: a retry is replayed, a new key for the same order gets the same payment', async () => {
    const db = openDatabase()
    const adapter = platform === 'Express' ? new ExpressAdapter() : new FastifyAdapter()
    const app = await NestFactory.create(appModule(db), adapter, { logger: false })
    await app.listen(0, '127.0.0.1')
    const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/payments`
    const post = async (key: string | undefined, orderId: string) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
        body: JSON.stringify({ orderId, amountCents: 4200 }),
      })
      const text = await response.text()
      return { status: response.status, replayed: response.headers.get('idempotent-replayed'), text }
    }
    try {
      const key = randomUUID()
      const first = await post(key, 'order-1')
      const retry = await post(key, 'order-1')
      const newKey = await post(randomUUID(), 'order-1')
      expect(first).toMatchObject({ status: 201, replayed: null })
      expect(JSON.parse(first.text)).toEqual({ id: 1, orderId: 'order-1', amountCents: 4200 })
      expect(retry).toEqual({ ...first, replayed: 'true' })
      expect(newKey).toEqual({ ...first, replayed: null })
      expect((await post(randomUUID(), 'order-2')).status).toBe(201)
      expect(db.prepare('SELECT order_id FROM payments ORDER BY id').all()).toEqual([
        { order_id: 'order-1' },
        { order_id: 'order-2' },
      ])
      const missing = await post(undefined, 'order-3')
      expect(missing.status).toBe(400)
      expect(JSON.parse(missing.text)).toMatchObject({ type: 'urn:idem:problem:missing-key' })
    } finally {
      await app.close()
      db.close()
    }
  })
})

it('main.ts runs its demo: executed, replayed, and the same payment for a new key', async () => {
  const [first, retry, newKey] = await demo()
  expect(first).toEqual({ status: 201, replayed: false, body: { id: 1, orderId: 'order-42', amountCents: 4200 } })
  expect(retry).toEqual({ ...first, replayed: true })
  expect(newKey).toEqual(first)
})

it('docs/nestjs.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/nestjs.md', import.meta.url), 'utf8')
  const shown = [...doc.matchAll(/<!-- example: (examples\/nestjs\/[\w.-]+) -->\n```ts\n([\s\S]*?)```/g)]
  expect(shown.map(([, path]) => path)).toEqual(['examples/nestjs/app.ts'])
  for (const [, path, code] of shown) {
    expect(code, path).toBe(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'))
  }
})
