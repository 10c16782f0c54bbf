// The NestJS servers bench/http.ts measures, on Nest's Express platform: the same `POST /orders`
// as bench/http/servers.ts, bare, by hand over Redis (the same floor middleware, mounted on Nest's
// Express instance before Nest's routes), and with Idem (IdemModule over RedisStore,
// @Idempotent() on the route). Decorators are applied as calls: the project compiles without
// experimentalDecorators.

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { REDIS_URL } from './servers.js'

export const NEST_VARIANTS = ['nest bare', 'nest floor', 'nest + idem'] as const
export type NestVariant = (typeof NEST_VARIANTS)[number]

/** Prints `READY <port>` once listening; SIGTERM closes the application and its clients. */
export async function serveNest(variant: NestVariant, prefix: string): Promise<void> {
  const { Body, Controller, Module, Post } = await import('@nestjs/common')
  const { NestFactory } = await import('@nestjs/core')
  const { ExpressAdapter } = await import('@nestjs/platform-express')
  const { Redis } = await import('ioredis')
  const closers: Array<() => Promise<unknown>> = []
  // As bench/http/servers.ts: one client configuration for Idem and the floor.
  const redisClient = () => {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableAutoPipelining: true })
    closers.push(() => client.quit())
    return client
  }

  let executed = 0
  class OrdersController {
    create(body: { amount: number }) {
      return { id: `ord_${++executed}`, status: 'paid', amount: body.amount }
    }
  }
  Controller('orders')(OrdersController)
  const create = Object.getOwnPropertyDescriptor(OrdersController.prototype, 'create') as PropertyDescriptor
  Post()(OrdersController.prototype, 'create', create)
  Body()(OrdersController.prototype, 'create', 0)

  const imports: unknown[] = []
  if (variant === 'nest + idem') {
    const { Idempotent, IdemModule } = await import('../../src/http/nestjs/index.js')
    const { RedisStore } = await import('../../src/stores/redis/index.js')
    Idempotent()(OrdersController.prototype, 'create', create)
    imports.push(
      IdemModule.forRoot({ store: new RedisStore({ client: redisClient(), prefix: `${prefix}:` }), required: true }),
    )
  }
  class AppModule {}
  Module({ imports: imports as never[], controllers: [OrdersController] })(AppModule)

  const app = await NestFactory.create(AppModule, new ExpressAdapter(), { logger: false })
  if (variant === 'nest floor') {
    const { expressFloor } = await import('./floor.js')
    expressFloor(app.getHttpAdapter().getInstance(), redisClient(), prefix)
  }
  await app.listen(0, '127.0.0.1')
  const server = app.getHttpServer() as Server
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`)
  process.once('SIGTERM', () => {
    server.closeAllConnections()
    void app
      .close()
      .then(() => Promise.allSettled(closers.map((close) => close())))
      .finally(() => process.exit(0))
  })
}
