// Test infrastructure for the client: a small payments API behind Idem's Express middleware
// (MemoryStore) that counts how often each charge really executed, and a TCP proxy that can let a
// request through and then break the connection before any byte of the answer reaches the client,
// which is the failure an Idempotency-Key exists for: the server did the work, the client cannot know.

import { createServer as createHttpServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, createServer as createTcpServer, type Socket } from 'node:net'
import express from 'express'
import { expressIdempotency } from '../../../src/http/express/index.js'
import { MemoryStore } from '../../../src/index.js'

export class ShopState {
  /** Charges executed, by the request body's `order` field. */
  readonly charges = new Map<string, number>()
  /** Every Idempotency-Key a handler saw, in order (one entry per execution). */
  readonly keys: string[] = []
  /** Idempotency-Key of every request that reached the server at all (before the middleware). */
  readonly received: string[] = []
  /** POST /charges waits for this before it answers. */
  gate: Promise<void> = Promise.resolve()
  /** Executions of POST /charges that have started (before the gate). */
  started = 0
  /** POST /flaky answers 503 this many times (the key is released, the handler runs again). */
  failNext = 0
  /** POST /limited is answered 429 `Retry-After: <limitRetryAfter>` this many times, before the middleware. */
  limitNext = 0
  limitRetryAfter = '1'

  count(order: string): number {
    return this.charges.get(order) ?? 0
  }

  get total(): number {
    let sum = 0
    for (const n of this.charges.values()) sum += n
    return sum
  }
}

export interface Shop {
  /** http://127.0.0.1:<port>, no trailing slash. */
  readonly url: string
  readonly state: ShopState
  /** The Express app, for tests that add routes (e.g. a page) before the first request. */
  readonly app: express.Express
  close(): Promise<void>
}

/** The API: POST /charges, /flaky and /limited with a JSON body `{ order, amount }`, Idempotency-Key required. */
export async function startShop(): Promise<Shop> {
  const state = new ShopState()
  const app = express()
  app.use((req, _res, next) => {
    state.received.push(String(req.headers['idempotency-key'] ?? ''))
    next()
  })
  app.use('/limited', (_req, res, next) => {
    if (state.limitNext <= 0) return next()
    state.limitNext--
    res.status(429).set('retry-after', state.limitRetryAfter).json({ error: 'slow down' })
  })
  app.use(express.json())
  const idempotent = expressIdempotency({ store: new MemoryStore(), required: true })
  const charge = (body: { order?: unknown; amount?: unknown }, key: string) => {
    const order = String(body.order)
    const n = state.count(order) + 1
    state.charges.set(order, n)
    state.keys.push(key)
    return { id: `ch_${order}_${n}`, order, amount: body.amount, execution: n }
  }
  app.post('/charges', idempotent, async (req, res) => {
    state.started++
    await state.gate
    res.status(201).json(charge(req.body, String(req.headers['idempotency-key'])))
  })
  app.post('/flaky', idempotent, (req, res) => {
    if (state.failNext > 0) {
      state.failNext--
      res.status(503).json({ error: 'try again' })
      return
    }
    res.status(201).json(charge(req.body, String(req.headers['idempotency-key'])))
  })
  app.post('/limited', idempotent, (req, res) => {
    res.status(201).json(charge(req.body, String(req.headers['idempotency-key'])))
  })
  const server = createHttpServer(app)
  const url = await listen(server)
  return {
    url,
    state,
    app,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

export interface DropProxy {
  /** http://127.0.0.1:<port> of the proxy. */
  readonly url: string
  /** The next this many answers are cut off: the request went through, the connection breaks before the reply. */
  dropNext: number
  /** Answers cut off so far. */
  readonly dropped: number
  close(): Promise<void>
}

/**
 * A TCP proxy to `target` (http://host:port). While `dropNext` is positive, the first bytes of an
 * answer destroy both connections instead of being forwarded, so the request executed upstream
 * and the client sees a reset.
 */
export async function startDropProxy(target: string): Promise<DropProxy> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  let dropped = 0
  const proxy = {
    dropNext: 0,
    get dropped() {
      return dropped
    },
  }
  const server = createTcpServer((client) => {
    const upstream = connect(Number(port), hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      if (proxy.dropNext > 0) {
        proxy.dropNext--
        dropped++
        client.resetAndDestroy()
        upstream.destroy()
        return
      }
      client.write(chunk)
    })
    upstream.once('end', () => client.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return Object.assign(proxy, {
    url,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  })
}

/** A server that accepts connections and never answers: every attempt against it times out. */
export async function startBlackhole(): Promise<{ url: string; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const hole = {
    url: '',
    connections: 0,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  const server = createTcpServer((socket) => {
    hole.connections++
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  hole.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return hole
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
