// Observability for an Express API and a Redis Streams consumer: Prometheus metrics on /metrics,
// structured logs of what an operator must see (takeovers, lost leases, store errors, dead
// letters, keys reused for another payload), wired with one call per part.
// Run it: npx tsx examples/observability/main.ts (needs Redis on 127.0.0.1:6379).

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { Idempotency } from 'idem'
import { expressIdempotency } from 'idem/express'
import { HttpIdempotency } from 'idem/http'
import { idemLogging, type Logger } from 'idem/logging'
import { idemMetrics } from 'idem/metrics'
import { RedisStore } from 'idem/redis'
import { consumeRedisStream, type RedisStreamHandle } from 'idem/redis-streams'
import type { Redis } from 'ioredis'
import { Registry } from 'prom-client'

export interface Order {
  orderId: string
}

export interface Shop {
  /** Where the API listens: POST /payments, GET /metrics. */
  url: string
  consumer: RedisStreamHandle<Order>
  shipped: string[]
  close(): Promise<void>
}

export async function startShop(redis: Redis, stream: string, logger: Logger = console): Promise<Shop> {
  const idem = new Idempotency({ store: new RedisStore({ client: redis }), scope: 'shop' })
  const http = new HttpIdempotency({ idem, required: true })
  const shipped: string[] = []

  const app = express()
  app.use(express.json())
  app.post('/payments', expressIdempotency(http), (req, res) => {
    res.status(201).json({ paid: req.body.amount })
  })
  const consumer = await consumeRedisStream<Order>({
    client: redis,
    stream,
    group: 'shipping',
    idem,
    handler: (order) => shipped.push(order.orderId),
  })

  // The observability: a registry to scrape, and one watch() per part.
  const registry = new Registry()
  const metrics = idemMetrics({ registry })
  metrics.watch(http) // each request's outcome and status, and the runs behind them
  metrics.watch(consumer, { name: 'shipping' }) // received, settled by outcome, in flight, lag
  const logging = idemLogging({ logger })
  logging.watch(http)
  logging.watch(consumer, { name: 'shipping' })
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics())
  })

  const server: Server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    consumer,
    shipped,
    async close() {
      metrics.close()
      logging.close()
      await consumer.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
