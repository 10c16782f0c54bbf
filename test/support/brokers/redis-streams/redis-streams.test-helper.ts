// Shared pieces of the Redis Streams adapter's tests: clients, a stream and group unique to each
// test, an Idem on a RedisStore of its own prefix, effect counters, and their cleanup.

import { Redis, type RedisOptions } from 'ioredis'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { RedisStore } from '../../../../src/stores/redis/redis-store.js'
import { isolatedName } from '../../../services.js'
import { type DriverClient, driverClient, type RedisDriver } from '../../redis-clients.test-helper.js'

export { type DriverClient, destroyClient, REDIS_DRIVERS, type RedisDriver } from '../../redis-clients.test-helper.js'

/** A client that keeps reconnecting (ioredis' defaults), as a consumer in production would. */
export function streamClient(port = 6379, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port, ...options })
  client.on('error', () => {})
  return client
}

/**
 * A consumer's client on `driver`: keeps reconnecting and queues commands meanwhile (both drivers'
 * defaults), named `name` on every connection when given.
 */
export function consumerClient(driver: RedisDriver, port = 6379, name?: string): Promise<DriverClient> {
  return driverClient(driver, port, name === undefined ? {} : { name })
}

export interface TestStream {
  stream: string
  group: string
  dead: string
  /** Every key this test created under its name (stream, dead letters, Idem records). */
  prefix: string
}

export function testStream(): TestStream {
  const prefix = isolatedName('idem_rs')
  return { stream: `${prefix}:orders`, group: 'billing', dead: `${prefix}:orders:dead`, prefix }
}

/** An Idempotency on a RedisStore under the test's prefix (short leases in tests). */
export function idemFor(client: DriverClient, test: TestStream, lease: string | number = '30s'): Idempotency {
  return new Idempotency({ store: new RedisStore({ client, prefix: `${test.prefix}:idem:` }), scope: 'billing', lease })
}

/** Delete every key of the test. */
export async function cleanup(client: Redis, test: TestStream): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${test.prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

/** Per message key, how many times its effect happened. */
export class Effects {
  readonly counts = new Map<string, number>()
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }
  get total(): number {
    let sum = 0
    for (const n of this.counts.values()) sum += n
    return sum
  }
  /** Keys whose effect happened more than once. */
  doubled(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([key]) => key)
  }
}

export { until } from '../../until.test-helper.js'

/** Entries of `group` still pending (delivered, not acknowledged). */
export async function pending(client: Redis, stream: string, group: string): Promise<number> {
  const summary = (await client.call('XPENDING', stream, group)) as [number]
  return Number(summary[0])
}

/** The fields of each entry of `stream`, as objects. */
export async function entries(
  client: Redis,
  stream: string,
): Promise<{ id: string; fields: Record<string, string> }[]> {
  const raw = await client.xrange(stream, '-', '+')
  return raw.map(([id, flat]) => {
    const fields: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string
    return { id, fields }
  })
}
