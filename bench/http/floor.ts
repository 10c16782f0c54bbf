// The floor under Idem's HTTP adapters: the same Idempotency-Key endpoint written by hand on the
// same parts (Express or Fastify, ioredis with the same options), no Idem code. A new key costs
// the two round trips RedisStore makes for one: a claim the size of Idem's, then the stored
// response (status, headers, body) with SET, the body held until that SET answers, as Idem holds
// it. A duplicate costs one round trip (the claim's own GET) and the stored response written back.
// What it leaves out is what Idem adds on purpose: key syntax, scope, fingerprint, lease renewal,
// fencing, takeover, problem details beyond the one 400.

import type { Express, Request, Response } from 'express'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'

/** Idem's retention (its default ttl, 24 h): the claim and the stored response both live that long. */
const TTL_MS = 24 * 60 * 60 * 1000
/**
 * As long as RedisStore's claim of a new key: state and attempt, three epoch-ms times, the
 * fingerprint's length and its 43 characters, a 36-character token (127 bytes).
 */
const CLAIM = `p1,${'1'.repeat(13)},${'1'.repeat(13)},${'1'.repeat(13)},43,${'f'.repeat(43)}${'t'.repeat(36)}`
const MISSING_KEY = JSON.stringify({
  type: 'urn:idem:problem:missing-key',
  title: 'Idempotency-Key is missing',
  status: 400,
  detail: 'This operation requires an idempotency-key header.',
})
const IN_PROGRESS = JSON.stringify({ type: 'urn:idem:problem:in-progress', status: 409 })

interface Stored {
  s: number
  h: Array<[string, string]>
  t: string
}

/**
 * One command per request before the handler: `SET NX GET` claims a new key (Redis answers nil)
 * or reads what a duplicate's key holds (a claim, or the stored response), with no second trip.
 */
function claim(redis: Redis, key: string): Promise<string | null> {
  return redis.set(key, CLAIM, 'PX', TTL_MS, 'NX', 'GET')
}

function store(redis: Redis, key: string, stored: Stored): Promise<unknown> {
  return redis.set(key, JSON.stringify(stored), 'PX', TTL_MS)
}

function keyOf(prefix: string, header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && header !== '' ? `${prefix}:${header}` : undefined
}

/** Express: a middleware after `express.json()`, holding `res.end` until the response is stored. */
export function expressFloor(app: Express, redis: Redis, prefix: string): void {
  app.use((req: Request, res: Response, next) => {
    // The methods Idem covers by default; the others pass untouched, as with Idem.
    if (req.method !== 'POST' && req.method !== 'PATCH') return next()
    const key = keyOf(prefix, req.headers['idempotency-key'])
    if (key === undefined) {
      res.status(400).type('application/problem+json').send(MISSING_KEY)
      return
    }
    claim(redis, key).then((held) => {
      if (held !== null) return replayExpress(res, held)
      const end = res.end
      res.end = function (this: Response, chunk?: unknown, ...rest: unknown[]) {
        const body = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : ''
        const type = String(res.getHeader('content-type') ?? '')
        void store(redis, key, { s: res.statusCode, h: [['content-type', type]], t: body }).then(() =>
          (end as (...a: unknown[]) => Response).call(this, chunk, ...rest),
        )
        return this
      } as Response['end']
      next()
    }, next)
  })
}

function replayExpress(res: Response, held: string): void {
  if (held.startsWith('p')) {
    res.status(409).type('application/problem+json').send(IN_PROGRESS)
    return
  }
  const stored = JSON.parse(held) as Stored
  res.status(stored.s)
  for (const [name, value] of stored.h) res.setHeader(name, value)
  res.setHeader('idempotent-replayed', 'true')
  res.end(stored.t)
}

/** Fastify: claim in `preHandler` (the body is parsed by then), store in `onSend` before the payload goes. */
export function fastifyFloor(app: FastifyInstance, redis: Redis, prefix: string): void {
  app.decorateRequest('floorKey', '')
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST' && request.method !== 'PATCH') return
    const key = keyOf(prefix, request.headers['idempotency-key'])
    if (key === undefined) return reply.code(400).type('application/problem+json').send(MISSING_KEY)
    const held = await claim(redis, key)
    if (held === null) {
      ;(request as FastifyRequest & { floorKey: string }).floorKey = key
      return
    }
    if (held.startsWith('p')) return reply.code(409).type('application/problem+json').send(IN_PROGRESS)
    const stored = JSON.parse(held) as Stored
    reply.code(stored.s)
    for (const [name, value] of stored.h) reply.header(name, value)
    return reply.header('idempotent-replayed', 'true').send(stored.t)
  })
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const key = (request as FastifyRequest & { floorKey: string }).floorKey
    if (key === '' || typeof payload !== 'string') return payload
    const type = String(reply.getHeader('content-type') ?? '')
    await store(redis, key, { s: reply.statusCode, h: [['content-type', type]], t: payload })
    return payload
  })
}
