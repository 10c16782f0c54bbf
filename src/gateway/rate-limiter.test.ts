import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { until } from '../../test/support/until.test-helper.js'
import { StoreUnavailableError } from '../errors.js'
import { createRateLimiter, type RateLimitBackend, type RouteRateLimiter } from './rate-limiter.js'

/** `total` requests of one principal spread over two limiters (two replicas), all at once. */
async function spread(replicas: RouteRateLimiter[], principal: string, total: number) {
  const decisions = await Promise.all(
    Array.from({ length: total }, (_, i) => (replicas[i % replicas.length] as RouteRateLimiter).consume(principal)),
  )
  const allowed = decisions.filter((d) => d.allowed).length
  const retryAfter = decisions.flatMap((d) => (d.allowed ? [] : [d.retryAfterMs]))
  return { allowed, retryAfter }
}

/** The shared-limit checks, for a backend two replicas would each have their own client of. */
function describeSharedLimit(name: string, backends: () => [RateLimitBackend, RateLimitBackend]) {
  describe(`rate limiter on ${name}`, () => {
    it('two replicas sharing a limit of N per window allow exactly N together; retryAfterMs is the rest of the window', async () => {
      const route = isolatedName('route')
      const [a, b] = backends()
      const replicas = [
        createRateLimiter(route, { requests: 7, per: 60_000 }, a),
        createRateLimiter(route, { requests: 7, per: 60_000 }, b),
      ]
      const { allowed, retryAfter } = await spread(replicas, 'alice', 30)
      expect(allowed).toBe(7)
      expect(retryAfter).toHaveLength(23)
      for (const ms of retryAfter) {
        expect(ms).toBeGreaterThan(50_000)
        expect(ms).toBeLessThanOrEqual(60_000)
      }
      // Another principal, and the same principal on another route, count apart.
      expect((await spread(replicas, 'bob', 7)).allowed).toBe(7)
      const other = createRateLimiter(`${route}-other`, { requests: 7, per: 60_000 }, a)
      expect(await other.consume('alice')).toEqual({ allowed: true })
    })

    it('the window ends by itself: the count starts again', async () => {
      const route = isolatedName('route')
      const [a, b] = backends()
      const replicas = [
        createRateLimiter(route, { requests: 2, per: 400 }, a),
        createRateLimiter(route, { requests: 2, per: 400 }, b),
      ]
      const first = await spread(replicas, '10.0.0.1', 5)
      expect(first.allowed).toBe(2)
      for (const ms of first.retryAfter) expect(ms).toBeLessThanOrEqual(400)
      await until('the window to end', async () => (await replicas[0]?.consume('10.0.0.1'))?.allowed === true, 5_000)
      expect((await replicas[1]?.consume('10.0.0.1'))?.allowed).toBe(true)
      expect((await replicas[0]?.consume('10.0.0.1'))?.allowed).toBe(false)
    })
  })
}

describe('rate limiter on memory (per process)', () => {
  it('allows N per window and says how long until the next', async () => {
    const limiter = createRateLimiter('orders', { requests: 3, per: 10_000 }, { type: 'memory' })
    const decisions = [] as Awaited<ReturnType<RouteRateLimiter['consume']>>[]
    for (let i = 0; i < 5; i++) decisions.push(await limiter.consume('alice'))
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false])
    const refused = decisions[4] as { allowed: false; retryAfterMs: number }
    expect(refused.retryAfterMs).toBeGreaterThan(9_000)
    expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000)
    expect((await limiter.consume('bob')).allowed).toBe(true)
  })

  it('two limiters in one process do not share memory counters (each replica counts alone)', async () => {
    const a = createRateLimiter('orders', { requests: 1, per: 10_000 }, { type: 'memory' })
    const b = createRateLimiter('orders', { requests: 1, per: 10_000 }, { type: 'memory' })
    expect((await a.consume('alice')).allowed).toBe(true)
    expect((await b.consume('alice')).allowed).toBe(true)
  })

  it('refuses bad configuration', () => {
    expect(() => createRateLimiter('r', { requests: 0, per: 1000 }, { type: 'memory' })).toThrow(/requests/)
    expect(() => createRateLimiter('r', { requests: 1, per: 0 }, { type: 'memory' })).toThrow(/per/)
    expect(() => createRateLimiter('', { requests: 1, per: 1000 }, { type: 'memory' })).toThrow(/route/)
  })
})

if (await requireService('Redis', SERVICES.Redis.port)) {
  const clients = [0, 1].map(() => {
    const client = new Redis(SERVICES.Redis.url, { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    return client
  })
  afterAll(() => Promise.all(clients.map((c) => c.quit())))
  describeSharedLimit('Redis', () => [
    { type: 'redis', client: clients[0] as Redis },
    { type: 'redis', client: clients[1] as Redis },
  ])

  it('a Redis that fails rejects with STORE_UNAVAILABLE instead of allowing', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
    })
    dead.on('error', () => {})
    const limiter = createRateLimiter('r', { requests: 5, per: 1000 }, { type: 'redis', client: dead })
    const error = await limiter.consume('alice').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StoreUnavailableError)
    expect((error as Error).message).toContain('Redis at 127.0.0.1:1')
    dead.disconnect()
  })
}

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  const pools = [0, 1].map(() => new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 4 }))
  afterAll(() => Promise.all(pools.map((p) => p.end())))
  describeSharedLimit('PostgreSQL', () => [
    { type: 'postgres', pool: pools[0] as pg.Pool },
    { type: 'postgres', pool: pools[1] as pg.Pool },
  ])

  it('a PostgreSQL that fails rejects with STORE_UNAVAILABLE, and the next request tries again', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test', connectionTimeoutMillis: 500 })
    pool.on('error', () => {})
    const limiter = createRateLimiter('r', { requests: 5, per: 1000 }, { type: 'postgres', pool })
    for (let i = 0; i < 2; i++) {
      const error = await limiter.consume('alice').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect((error as Error).message).toContain('Rate limiter of route "r" could not count on its postgres store')
    }
    await pool.end()
  })
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  const pools = [0, 1].map(() => mysql.createPool({ uri: SERVICES.MariaDB.url, connectionLimit: 4 }))
  afterAll(() => Promise.all(pools.map((p) => p.end())))
  describeSharedLimit('MariaDB', () => [
    { type: 'mysql', pool: pools[0] as mysql.Pool },
    { type: 'mysql', pool: pools[1] as mysql.Pool },
  ])
}
