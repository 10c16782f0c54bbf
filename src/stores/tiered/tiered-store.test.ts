import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { destroyClient, driverClient, REDIS_DRIVERS } from '../../../test/support/redis-clients.test-helper.js'
import { tieredOverSqlite } from '../../../test/support/stores/tiered/tiered-over-sqlite.test-helper.js'
import { StoreUnavailableError } from '../../errors.js'
import { describeStoreConformance } from '../../testing/index.js'
import { RedisResultCache } from './redis-result-cache.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  // The same suite on each Redis driver the cache accepts.
  for (const driver of REDIS_DRIVERS) {
    const redis = await driverClient(driver, SERVICES.Redis.port, { failFast: true })
    afterAll(() => destroyClient(redis))

    describeStoreConformance(
      {
        name: `TieredStore (Redis cache on ${driver}, over SQLite)`,
        // Both tiers on real clocks: Redis expires copies by itself, so time cannot be faked.
        leaseMs: 300,
        ttlMs: 1300,
        create: () => tieredOverSqlite(redis, 'idem_tiered'),
      },
      { describe, it },
    )
  }

  describe('RedisResultCache', () => {
    for (const driver of REDIS_DRIVERS) {
      it(`reads one copy with one plain GET, several with one pipeline (${driver})`, async () => {
        const client = await driverClient(driver, SERVICES.Redis.port)
        // Counts the client methods the cache calls: ioredis' call/pipeline, node-redis' sendCommand.
        const calls: string[] = []
        const spy = new Proxy(client, {
          get(target, property) {
            const value = Reflect.get(target, property, target)
            if (typeof value !== 'function') return value
            return (...args: unknown[]) => {
              calls.push(property === 'sendCommand' ? String((args[0] as string[])[0]) : String(property))
              return value.apply(target, args)
            }
          },
        })
        const cache = new RedisResultCache({ client: spy, prefix: `${isolatedName('idem_tiered')}:` })
        try {
          const entry = { fingerprint: 'fp', result: '"r"', attempt: 1, completedAt: 5 }
          await cache.putMany([{ id: 'a', entry, ttlMs: 5000 }])
          calls.length = 0
          expect(await cache.getMany(['a'])).toEqual([entry])
          expect(calls).toEqual(driver === 'ioredis' ? ['call'] : ['GET'])
          calls.length = 0
          expect(await cache.getMany(['a', 'b'])).toEqual([entry, null])
          expect(calls).toEqual(driver === 'ioredis' ? ['pipeline'] : ['GET', 'GET'])
          await cache.delete('a')
          expect(await cache.getMany(['a'])).toEqual([null])
        } finally {
          destroyClient(client)
        }
      })
    }

    it('names the server and the cause when its client cannot reach Redis', async () => {
      // A node-redis client never connected: every command fails with "The client is closed".
      const { createClient } = await import('redis')
      const cache = new RedisResultCache({ client: createClient({ socket: { host: '127.0.0.1', port: 6379 } }) })
      for (const failing of [cache.getMany(['a']), cache.getMany(['a', 'b']), cache.delete('a')]) {
        await expect(failing).rejects.toBeInstanceOf(StoreUnavailableError)
        await expect(failing).rejects.toThrow(/^Redis at 127\.0\.0\.1:6379 is unreachable: The client is closed/)
      }
    })

    it('refuses at construction an object that is neither Redis client', () => {
      expect(() => new RedisResultCache({ client: { get: () => null } as never })).toThrow(TypeError)
    })
  })
}
