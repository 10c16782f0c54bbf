// Per-route rate limits, counted in the route's store so that every gateway replica on that store
// shares one count: a fixed window of `per` ms per (route, principal), `requests` allowed in it.
// Each request is one atomic operation on the backend (a Lua script on Redis, one upsert on
// PostgreSQL, one transaction on MySQL), so two replicas can never both take the last slot.
// A backend that fails rejects with STORE_UNAVAILABLE: the gateway applies the route's
// onStoreFailure policy, never a silent "allowed".

import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Pool as MysqlPool } from 'mysql2/promise'
import type { Pool as PgPool } from 'pg'
import { RateLimiterMemory, RateLimiterMySQL, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible'
import { linkTo } from '../drivers/redis-link.js'
import { StoreUnavailableError } from '../errors.js'
import { ScriptRunner } from '../stores/redis/redis-client.js'
import type { RedisScript } from '../stores/redis/redis-scripts.js'
import type { RateLimitConfig } from './config/schema.js'

/**
 * Where a route's counters live. `memory` is per process: each replica counts on its own, so N
 * replicas allow up to N × requests. SQLite and memory stores get it (a SQLite file is not meant
 * to take a write per request from every replica).
 */
export type RateLimitBackend =
  | {
      type: 'redis'
      client: Redis
      /** Prepended to every counter's key. Default `idem:rate:`. */
      prefix?: string
    }
  | { type: 'postgres'; pool: PgPool }
  | { type: 'mysql'; pool: MysqlPool }
  | { type: 'memory' }

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number }

export interface RouteRateLimiter {
  readonly route: string
  readonly backend: RateLimitBackend['type']
  /** Count one request of `principal` (the client address when anonymous). Rejects when the backend fails. */
  consume(principal: string): Promise<RateLimitDecision>
}

/** The table both SQL backends keep their counters in (key, points, expire: rate-limiter-flexible's layout). */
export const RATE_LIMIT_TABLE = 'idem_rate_limits'
export const DEFAULT_RATE_LIMIT_PREFIX = 'idem:rate:'

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true })

export function createRateLimiter(route: string, config: RateLimitConfig, backend: RateLimitBackend): RouteRateLimiter {
  if (typeof route !== 'string' || route.length === 0) {
    throw new TypeError(`Rate limiter: route must be a non-empty string, got ${JSON.stringify(route)}`)
  }
  if (!Number.isInteger(config.requests) || config.requests < 1) {
    throw new TypeError(
      `Rate limit of route "${route}": requests must be an integer of at least 1, got ${config.requests}`,
    )
  }
  if (!Number.isFinite(config.per) || config.per < 1) {
    throw new TypeError(`Rate limit of route "${route}": per must be a duration of at least 1 ms, got ${config.per}`)
  }
  switch (backend.type) {
    case 'redis':
      return redisLimiter(route, config, backend.client, backend.prefix ?? DEFAULT_RATE_LIMIT_PREFIX)
    case 'postgres':
      return libraryLimiter(route, backend.type, async () => {
        try {
          await backend.pool.query(
            `CREATE TABLE IF NOT EXISTS "${RATE_LIMIT_TABLE}" (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`,
          )
        } catch (error) {
          // Two replicas creating it at once collide on the catalog (unique_violation): it exists.
          if ((error as { code?: unknown }).code !== '23505') throw error
        }
        // Expiry is computed from this replica's clock (the library's choice): keep replicas' clocks
        // in sync (NTP), or a replica ahead of the others ends windows early. Expired rows are
        // reset by the next request and deleted by the library's hourly sweep.
        return new RateLimiterPostgres({
          ...libraryOptions(config),
          storeClient: backend.pool,
          storeType: 'pool',
          tableName: RATE_LIMIT_TABLE,
          tableCreated: true,
        })
      })
    case 'mysql':
      return libraryLimiter(route, backend.type, async () => {
        // The library would also run CREATE DATABASE, which a user with rights on its own
        // database only is refused: the table is created here, in the pool's database.
        const [rows] = await backend.pool.query('SELECT DATABASE() AS db')
        const database = (rows as { db: string | null }[])[0]?.db
        if (database == null) throw new Error('the MySQL URL names no database (mysql://user@host:3306/<database>)')
        await backend.pool.query(
          `CREATE TABLE IF NOT EXISTS \`${RATE_LIMIT_TABLE}\` (\`key\` VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \`points\` INT NOT NULL DEFAULT 0, \`expire\` BIGINT UNSIGNED, PRIMARY KEY (\`key\`)) ENGINE = InnoDB`,
        )
        // rate-limiter-flexible speaks mysql2's callback API: the promise pool's core pool.
        return new RateLimiterMySQL({
          ...libraryOptions(config),
          storeClient: backend.pool.pool,
          storeType: 'pool',
          dbName: database,
          tableName: RATE_LIMIT_TABLE,
          tableCreated: true,
        })
      })
    case 'memory': {
      const limiter = new RateLimiterMemory(libraryOptions(config))
      return libraryLimiter(route, backend.type, async () => limiter)
    }
    default:
      throw new TypeError(
        `Rate limit of route "${route}": unknown backend ${JSON.stringify((backend as { type?: unknown }).type)}`,
      )
  }
}

/**
 * The counter's key: the route, then a SHA-256 of the principal. Hashed because a principal is
 * any string (a JWT subject, a header value): hashing bounds the key within the SQL tables'
 * 255-character column, and makes it plain hex, which no collation folds ("Alice" and "alice"
 * stay two principals). Route names have no ':' (the schema forbids it), so keys never collide.
 */
function counterKey(route: string, principal: string): string {
  return `${route}:${createHash('sha256').update(principal).digest('hex')}`
}

/** A window the backend reports as ended (0 ms left) still asks for a retry a moment later. */
function retryAfter(ms: number): number {
  return Math.max(1, Math.ceil(ms))
}

function unavailable(route: string, backend: string, error: unknown): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error
  return new StoreUnavailableError(
    `Rate limiter of route "${route}" could not count on its ${backend} store: ${(error as Error)?.message ?? error}`,
    { cause: error },
  )
}

// One script, not rate-limiter-flexible's RateLimiterRedis, because the library's Redis counter
// expires with EX in whole seconds (floor(per / 1000)): a window under a second gets no expiry
// at all, so its counter never resets, and 1.5 s becomes 1 s. This one expires with PEXPIRE in
// ms, by Redis' clock, and repairs a counter that somehow lost its expiry.
// KEYS[1] the counter; ARGV[1] the window in ms. Returns {count, ms until the window ends}.
const CONSUME_SOURCE = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`
const CONSUME: RedisScript = {
  source: CONSUME_SOURCE,
  sha: createHash('sha1').update(CONSUME_SOURCE).digest('hex'),
}

function redisLimiter(route: string, config: RateLimitConfig, client: Redis, prefix: string): RouteRateLimiter {
  // EVALSHA with the EVAL fallback (a restarted Redis forgets scripts), errors named with the server.
  const runner = new ScriptRunner(linkTo(client))
  const windowMs = Math.ceil(config.per)
  return {
    route,
    backend: 'redis',
    async consume(principal) {
      let reply: unknown
      try {
        reply = await runner.run(CONSUME, 1, [prefix + counterKey(route, principal), windowMs])
      } catch (error) {
        throw unavailable(route, 'redis', error)
      }
      const [count, ttl] = reply as [number, number]
      return count <= config.requests ? ALLOWED : { allowed: false, retryAfterMs: retryAfter(ttl) }
    },
  }
}

/** rate-limiter-flexible's per-key counters in a window of `per` (which it takes in seconds). */
function libraryOptions(config: RateLimitConfig): { points: number; duration: number; keyPrefix: string } {
  return { points: config.requests, duration: config.per / 1000, keyPrefix: 'idem' }
}

interface LibraryLimiter {
  consume(key: string, points?: number): Promise<RateLimiterRes>
}

/**
 * A rate-limiter-flexible limiter, made on first use by `prepare` (which creates the table).
 * A failed preparation is tried again by the next request rather than leaving the route broken
 * for good by a database that was down when the gateway started.
 */
function libraryLimiter(
  route: string,
  backend: RateLimitBackend['type'],
  prepare: () => Promise<LibraryLimiter>,
): RouteRateLimiter {
  let ready: LibraryLimiter | undefined
  let preparing: Promise<LibraryLimiter> | undefined
  const limiter = (): Promise<LibraryLimiter> => {
    preparing ??= prepare().then(
      (made) => {
        ready = made
        return made
      },
      (error: unknown) => {
        preparing = undefined
        throw error
      },
    )
    return preparing
  }
  return {
    route,
    backend,
    async consume(principal) {
      try {
        await (ready ?? (await limiter())).consume(counterKey(route, principal))
        return ALLOWED
      } catch (outcome) {
        // The library rejects with its RateLimiterRes when the limit is reached, with an Error when the store failed.
        if (outcome instanceof RateLimiterRes) return { allowed: false, retryAfterMs: retryAfter(outcome.msBeforeNext) }
        throw unavailable(route, backend, outcome)
      }
    },
  }
}
