// What the per-broker consumer benchmarks share: the row they report, the floors' record per
// message in Redis written by hand, Redis cleanup, the median of rounds, and the table a module
// prints when it runs on its own.

import { hash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { FencedCompletions } from '../lib/fenced-completions.js'
import { FLOOR_CLAIM, TTL_MS } from '../lib/fixtures.js'

export interface Row {
  adapter: string
  variant: 'raw' | 'floor-redis' | 'fenced-floor-redis' | 'idem-redis' | 'idem-redis-batch' | 'idem-sqlite'
  messagesPerSecond: number
}

/** The variants of the brokers with a batch goal (RabbitMQ, NATS, Redis Streams), in the order each round runs them. */
export const BROKER_VARIANTS: readonly Row['variant'][] = [
  'raw',
  'floor-redis',
  'fenced-floor-redis',
  'idem-redis',
  'idem-redis-batch',
  'idem-sqlite',
]

/**
 * A message's handler run through a record in Redis, by hand (the floor variants): resolves once
 * the outcome is stored, or at once for a copy; the caller acknowledges then, as Idem does after its
 * completion. `body` is the message's payload as received (the handler parses it).
 */
export type RecordPerMessage = (id: string, body: string, handler: () => unknown) => Promise<void>

/**
 * The `floor-redis` variant: the least a consumer can do, by hand, to run each message's handler
 * once with a record per message in Redis. Before the handler `SET <key> <claim> PX <ttl> NX GET`
 * (anything already there: a copy, acknowledged without running); after it `SET <key> <result> PX
 * <ttl>`. `redis` should auto-pipeline, so that a tick's commands share one write, as Idem's link
 * does. Its share of the raw consumer is what a record per message in this Redis leaves to any
 * idempotent consumer on this machine.
 */
export function redisRecordPerMessage(redis: Redis, prefix: string): RecordPerMessage {
  return async (id, _body, handler) => {
    const key = `${prefix}${id}`
    const existing = await redis.set(key, FLOOR_CLAIM, 'PX', TTL_MS, 'NX', 'GET')
    if (existing !== null) return
    const value = await handler()
    await redis.set(key, `c${JSON.stringify(value ?? null)}`, 'PX', TTL_MS)
  }
}

/**
 * The `fenced-floor-redis` variant: `floor-redis` plus the guarantees no correct consumer can leave
 * out, each at its least (as the HTTP and store benchmarks' fenced floors): the body's fingerprint
 * (one SHA-256), an owner token in the claim (`SET <key> p<fingerprint><token> PX <ttl> NX GET`) and
 * a fenced completion (a script that stores the outcome only while the claim ends with that token,
 * the completions of one tick in one call). What it leaves out is what Idem adds beyond them: lease
 * renewal, takeover, attempts and record times, canonical JSON, retries, events, dead-lettering.
 */
export function fencedRecordPerMessage(redis: Redis, prefix: string): RecordPerMessage {
  const completions = new FencedCompletions(redis, TTL_MS)
  return async (id, body, handler) => {
    const key = `${prefix}${id}`
    const fingerprint = hash('sha256', body, 'base64url')
    const token = randomUUID()
    const existing = await redis.set(key, `p${fingerprint}${token}`, 'PX', TTL_MS, 'NX', 'GET')
    if (existing !== null) return
    const value = await handler()
    if (!(await completions.complete(key, token, `c${fingerprint}${JSON.stringify(value ?? null)}`))) {
      throw new Error(`the claim of ${id} was lost before its outcome was stored`)
    }
  }
}

/** Delete every key matching `pattern` (SCAN, in slices), the keys a run's stores wrote. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500))
  } while (cursor !== '0')
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

/** One line per variant with its share of the raw consumer, for a module run on its own. */
export function printRows(rows: readonly Row[]): void {
  const raw = rows.find((r) => r.variant === 'raw')?.messagesPerSecond ?? 1
  for (const row of rows) {
    const ratio = `${((row.messagesPerSecond / raw) * 100).toFixed(0)}%`
    console.log(`${row.variant.padEnd(18)} ${Math.round(row.messagesPerSecond).toString().padStart(8)} msg/s  ${ratio}`)
  }
}
