// The servers bench/http.ts measures, one per child process: `POST /orders` answered 201 with a
// small JSON order, bare, by hand over Redis (the floor), with Idem, and with the peers.

import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'

export const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'

export const VARIANTS = [
  'express bare',
  'express floor',
  'express fenced floor',
  'express + idem',
  'express + express-idempotency',
  'express + @node-idempotency/core',
  'fastify bare',
  'fastify floor',
  'fastify fenced floor',
  'fastify + idem',
] as const
export type Variant = (typeof VARIANTS)[number]

/** Prints `READY <port>` once listening; SIGTERM closes the server and its clients. */
export async function serve(variant: Variant, prefix: string): Promise<void> {
  const require = createRequire(import.meta.url)
  let executed = 0
  const order = (body: { amount: number }) => ({ id: `ord_${++executed}`, status: 'paid', amount: body.amount })
  const closers: Array<() => Promise<unknown>> = []
  let server: import('node:http').Server

  if (variant.startsWith('fastify')) {
    const { default: Fastify } = await import('fastify')
    const app = Fastify()
    if (variant === 'fastify + idem') {
      const { fastifyIdempotency } = await import('../../src/http/fastify/index.js')
      await app.register(fastifyIdempotency, { store: await redisStore(prefix, closers), required: true })
    } else if (variant === 'fastify floor') {
      const { fastifyFloor } = await import('./floor.js')
      fastifyFloor(app, await redisClient(closers), prefix)
    } else if (variant === 'fastify fenced floor') {
      const { fastifyFencedFloor } = await import('./floor.js')
      fastifyFencedFloor(app, await redisClient(closers), prefix)
    }
    app.post<{ Body: { amount: number } }>('/orders', async (request, reply) =>
      reply.code(201).send(order(request.body)),
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server
  } else {
    const { default: express } = await import('express')
    const app = express()
    app.use(express.json())
    let isHit = (_req: unknown) => false
    if (variant === 'express + idem') {
      const { expressIdempotency } = await import('../../src/http/express/index.js')
      app.use(expressIdempotency({ store: await redisStore(prefix, closers), required: true }))
    } else if (variant === 'express floor') {
      const { expressFloor } = await import('./floor.js')
      expressFloor(app, await redisClient(closers), prefix)
    } else if (variant === 'express fenced floor') {
      const { expressFencedFloor } = await import('./floor.js')
      expressFencedFloor(app, await redisClient(closers), prefix)
    } else if (variant === 'express + express-idempotency') {
      // Its README: the middleware, a Redis data adapter, and isHit() checked in the handler.
      const { idempotency, getSharedIdempotencyService } = await import('express-idempotency')
      const RedisAdapter = require('express-idempotency-redis-adapter').default
      const adapter = new RedisAdapter({ connectionConfig: { url: REDIS_URL } })
      await adapter.connect()
      closers.push(() => adapter.disconnect())
      app.use(idempotency({ dataAdapter: adapter }))
      isHit = (req) => getSharedIdempotencyService().isHit(req as never)
    } else if (variant === 'express + @node-idempotency/core') {
      // Its README: onRequest before the handler (a replay or undefined), onResponse with the
      // response before it is sent; errors carry a code that maps to a status, as its Express
      // package does.
      const { Idempotency } = await import('@node-idempotency/core')
      const { RedisStorageAdapter } = await import('@node-idempotency/storage-adapter-redis')
      const adapter = new RedisStorageAdapter({ url: REDIS_URL })
      await adapter.connect()
      closers.push(() => adapter.disconnect())
      const idem = new Idempotency(adapter, { enforceIdempotency: true, cacheKeyPrefix: prefix })
      app.use(async (req, res, next) => {
        const request = { method: req.method, headers: req.headers, body: req.body, path: req.path }
        try {
          const stored = await idem.onRequest<unknown, unknown>(request)
          if (stored !== undefined) {
            res.status(Number(stored.additional?.status ?? 200)).json(stored.body)
            return
          }
        } catch (error) {
          const code = (error as { code?: string }).code
          res.status(code === 'CONFLICT' ? 409 : code === 'FINGERPRINT_MISMATCH' ? 422 : 400).end()
          return
        }
        const json = res.json.bind(res)
        res.json = (body: unknown) => {
          void idem.onResponse(request, { body, additional: { status: res.statusCode } }).finally(() => json(body))
          return res
        }
        next()
      })
    }
    app.post('/orders', (req, res) => {
      if (isHit(req)) return
      res.status(201).json(order(req.body))
    })
    const { createServer } = await import('node:http')
    server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  }
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`)
  process.once('SIGTERM', () => {
    server.close()
    void Promise.allSettled(closers.map((close) => close())).finally(() => process.exit(0))
  })
}

/**
 * The one client configuration of Idem's variants and of the floor. Auto-pipelining sends the
 * commands of one tick in one write, as node-redis (the peers' client) does by default; without
 * it each command is its own write(2). Measured both ways: no difference in req/s or CPU here
 * (bench/docs/http.md).
 */
async function redisClient(closers: Array<() => Promise<unknown>>): Promise<Redis> {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableAutoPipelining: true })
  closers.push(() => client.quit())
  return client
}

async function redisStore(prefix: string, closers: Array<() => Promise<unknown>>) {
  const { RedisStore } = await import('../../src/stores/redis/index.js')
  return new RedisStore({ client: await redisClient(closers), prefix: `${prefix}:` })
}
