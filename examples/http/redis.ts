// In production: one Redis store shared by every instance of the API, with your options.

import { HttpIdempotency } from 'idem/http'
import { RedisStore } from 'idem/redis'
import { Redis } from 'ioredis'

export function productionIdempotency(redisUrl: string): HttpIdempotency {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  return new HttpIdempotency({
    store: new RedisStore({ client, prefix: 'api:' }),
    required: true,
    ttl: '24h',
    lease: '30s',
    // Who the caller is, from your own authentication (default: the Authorization header, hashed).
    principal: (request) => request.headers['x-api-client'] as string | undefined,
  })
}
// Pass it to any adapter: expressIdempotency(http), withIdempotency(http, handler),
// honoIdempotency(http), or app.register(fastifyIdempotency, { core: http }).
