// In production: one Redis store shared by every instance of the API, with your options.

import { Idempotency } from 'idem'
import { HttpIdempotency } from 'idem/http'
import { RedisStore } from 'idem/redis'
import { Redis } from 'ioredis'

export function productionIdempotency(redisUrl: string): HttpIdempotency {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  // Your Idempotency: the HTTP layer runs every request through it, so its events are yours to
  // watch. It stays yours, as do the store and the client: close them at shutdown.
  const idem = new Idempotency({ store: new RedisStore({ client, prefix: 'api:' }), ttl: '24h', lease: '30s' })
  idem.on('store_error', ({ operation, error }) => console.error(`idempotency store failed (${operation})`, error))
  return new HttpIdempotency({
    idem,
    required: true,
    // Who the caller is, from your own authentication (default: the Authorization header, hashed).
    principal: (request) => request.headers['x-api-client'] as string | undefined,
  })
}
// Pass it to any adapter: expressIdempotency(http), withIdempotency(http, handler),
// honoIdempotency(http), koaIdempotency(http), IdemModule.forRoot(http), or
// app.register(fastifyIdempotency, http).
