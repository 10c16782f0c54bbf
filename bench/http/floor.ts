// The floor under Idem's HTTP adapters: the same Idempotency-Key endpoint written by hand on the
// same parts (Express or Fastify, ioredis with the same options), no Idem code. A new key costs
// the two round trips RedisStore makes for one: a claim the size of Idem's, then the stored
// response (status, headers, body) with SET, the body held until that SET answers, as Idem holds
// it. A duplicate costs one round trip (the claim's own GET) and the stored response written back.
// What it leaves out is what Idem adds on purpose: key syntax, scope, fingerprint, lease renewal,
// fencing, takeover, problem details beyond the one 400.
//
// The fenced floor adds to it, at their least, the guarantees any correct implementation needs
// and the floor lacks: the request's fingerprint (one SHA-256 over method, target and the body's
// JSON), checked when a key comes back (422 for another request); an owner token in the claim;
// and a completion that lands only while the claim still holds that token (a script: GET, compare,
// SET), batched per tick as Idem batches its completions. No lease renewal, takeover, scope or
// canonical JSON: what it costs beyond the floor is what those guarantees cost alone.

import { hash, randomUUID } from 'node:crypto'
import type { Express, Request, Response } from 'express'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { FencedCompletions } from '../lib/fenced-completions.js'
import { FLOOR_CLAIM, TTL_MS } from '../lib/fixtures.js'

const MISSING_KEY = JSON.stringify({
  type: 'urn:idem:problem:missing-key',
  title: 'Idempotency-Key is missing',
  status: 400,
  detail: 'This operation requires an idempotency-key header.',
})
const IN_PROGRESS = JSON.stringify({ type: 'urn:idem:problem:in-progress', status: 409 })
const MISMATCH = JSON.stringify({ type: 'urn:idem:problem:fingerprint-mismatch', status: 422 })

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
  return redis.set(key, FLOOR_CLAIM, 'PX', TTL_MS, 'NX', 'GET')
}

function store(redis: Redis, key: string, stored: Stored): Promise<unknown> {
  return redis.set(key, JSON.stringify(stored), 'PX', TTL_MS)
}

function keyOf(prefix: string, header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && header !== '' ? `${prefix}:${header}` : undefined
}

/**
 * The key of a request an Express floor covers; undefined once the request was passed on (the
 * methods Idem covers by default are POST and PATCH; the others pass untouched, as with Idem) or
 * answered (400 without a key).
 */
function expressKey(req: Request, res: Response, next: () => void, prefix: string): string | undefined {
  if (req.method !== 'POST' && req.method !== 'PATCH') {
    next()
    return undefined
  }
  const key = keyOf(prefix, req.headers['idempotency-key'])
  if (key === undefined) res.status(400).type('application/problem+json').send(MISSING_KEY)
  return key
}

/** Express: a middleware after `express.json()`, holding `res.end` until the response is stored. */
export function expressFloor(app: Express, redis: Redis, prefix: string): void {
  app.use((req: Request, res: Response, next) => {
    const key = expressKey(req, res, next, prefix)
    if (key === undefined) return
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

// ---------------------------------------------------------------- the fenced floor

interface FencedStored extends Stored {
  /** The fingerprint of the request that stored it. */
  f: string
}

/** The least fingerprint of a request: one SHA-256 over method, target and the body as JSON. */
function fingerprintOf(method: string, url: string, body: unknown): string {
  return hash('sha256', JSON.stringify([method, url, body ?? null]), 'base64url')
}

/** What a claim found: proceed with the token, or answer (replay, 409, 422). */
type Claimed = { token: string } | { status: number; headers: Array<[string, string]>; body: string }

async function fencedClaim(redis: Redis, key: string, fingerprint: string): Promise<Claimed> {
  const token = randomUUID()
  const held = await redis.set(key, `p${fingerprint}${token}`, 'PX', TTL_MS, 'NX', 'GET')
  if (held === null) return { token }
  const problem = [['content-type', 'application/problem+json']] as Array<[string, string]>
  if (held.startsWith('p')) {
    return held.startsWith(fingerprint, 1)
      ? { status: 409, headers: problem, body: IN_PROGRESS }
      : { status: 422, headers: problem, body: MISMATCH }
  }
  const stored = JSON.parse(held) as FencedStored
  if (stored.f !== fingerprint) return { status: 422, headers: problem, body: MISMATCH }
  return { status: stored.s, headers: [...stored.h, ['idempotent-replayed', 'true']], body: stored.t }
}

/** Express, fenced: the floor plus the fingerprint, the owner token and the fenced completion. */
export function expressFencedFloor(app: Express, redis: Redis, prefix: string): void {
  const completions = new FencedCompletions(redis, TTL_MS)
  app.use((req: Request, res: Response, next) => {
    const key = expressKey(req, res, next, prefix)
    if (key === undefined) return
    const fingerprint = fingerprintOf(req.method, req.originalUrl, req.body)
    fencedClaim(redis, key, fingerprint).then((claimed) => {
      if (!('token' in claimed)) {
        res.status(claimed.status)
        for (const [name, value] of claimed.headers) res.setHeader(name, value)
        res.end(claimed.body)
        return
      }
      const end = res.end
      res.end = function (this: Response, chunk?: unknown, ...rest: unknown[]) {
        const body = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : ''
        const type = String(res.getHeader('content-type') ?? '')
        const stored = {
          f: fingerprint,
          s: res.statusCode,
          h: [['content-type', type]] as Array<[string, string]>,
          t: body,
        }
        const send = () => (end as (...a: unknown[]) => Response).call(this, chunk, ...rest)
        void completions.complete(key, claimed.token, JSON.stringify(stored)).then(send, send)
        return this
      } as Response['end']
      next()
    }, next)
  })
}

/** Fastify, fenced: the floor plus the fingerprint, the owner token and the fenced completion. */
export function fastifyFencedFloor(app: FastifyInstance, redis: Redis, prefix: string): void {
  const completions = new FencedCompletions(redis, TTL_MS)
  app.decorateRequest('floorClaim', null)
  type Holding = FastifyRequest & { floorClaim: { key: string; token: string; fingerprint: string } | null }
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST' && request.method !== 'PATCH') return
    const key = keyOf(prefix, request.headers['idempotency-key'])
    if (key === undefined) return reply.code(400).type('application/problem+json').send(MISSING_KEY)
    const fingerprint = fingerprintOf(request.method, request.url, request.body)
    const claimed = await fencedClaim(redis, key, fingerprint)
    if ('token' in claimed) {
      ;(request as Holding).floorClaim = { key, token: claimed.token, fingerprint }
      return
    }
    reply.code(claimed.status)
    for (const [name, value] of claimed.headers) reply.header(name, value)
    return reply.send(claimed.body)
  })
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = (request as Holding).floorClaim
    if (claim === null || typeof payload !== 'string') return payload
    const type = String(reply.getHeader('content-type') ?? '')
    const stored = {
      f: claim.fingerprint,
      s: reply.statusCode,
      h: [['content-type', type]] as Array<[string, string]>,
      t: payload,
    }
    await completions.complete(claim.key, claim.token, JSON.stringify(stored)).catch(() => false)
    return payload
  })
}
