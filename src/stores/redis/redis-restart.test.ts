// RedisStore on a Redis of its own (127.0.0.1:7201, no persistence), to show what a restart does
// and that duplicates never write. A TieredStore test can reuse startRedis from
// redis-server.test-helper.ts the same way (on another port).

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { requireRedisBinaries } from '../../../test/services.js'
import { redisClient } from '../../../test/support/stores/redis/redis-harness.test-helper.js'
import { type RedisProcess, startRedis } from '../../../test/support/stores/redis/redis-server.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { StoreUnavailableError } from '../../errors.js'
import { RedisStore } from './redis-store.js'

const PORT = 7201

if (await requireRedisBinaries(`RedisStore on its own Redis (127.0.0.1:${PORT})`)) {
  describe(`RedisStore on its own Redis (127.0.0.1:${PORT}, no persistence)`, () => {
    let server: RedisProcess | undefined
    let client: Redis
    beforeAll(async () => {
      server = await startRedis(PORT)
      client = redisClient(PORT)
    }, 30_000)
    afterAll(async () => {
      client?.disconnect()
      await server?.stop()
    }, 30_000)

    /** Writes Redis has applied since start: a read-only path leaves it unchanged. */
    const writes = async (): Promise<number> =>
      Number(/rdb_changes_since_last_save:(\d+)/.exec(await client.info('persistence'))?.[1])

    it('answers duplicates of completed and running records without writing', async () => {
      const store = new RedisStore({ client, prefix: 'ro:' })
      const done = await store.begin('done', 'fp', 30_000, 60_000)
      if (done.outcome !== 'acquired') throw new Error(done.outcome)
      await store.complete('done', done.token, '"result"', 60_000)
      expect((await store.begin('running', 'fp', 30_000, 60_000)).outcome).toBe('acquired')
      const before = await writes()
      for (let i = 0; i < 20; i++) {
        expect((await store.begin('done', 'fp', 30_000, 60_000)).outcome).toBe('completed')
        expect((await store.begin('running', 'fp', 30_000, 60_000)).outcome).toBe('in_progress')
        expect((await store.begin('done', 'other', 30_000, 60_000)).outcome).toBe('mismatch')
      }
      const batch = await store.beginMany(
        [
          { id: 'done', fingerprint: 'fp' },
          { id: 'running', fingerprint: 'fp' },
        ],
        30_000,
        60_000,
      )
      expect(batch.map((r) => r.outcome)).toEqual(['completed', 'in_progress'])
      expect(await writes()).toBe(before)
    })

    it('forgets completed keys when Redis restarts without persistence: they execute again', async () => {
      const store = new RedisStore({ client, prefix: 'restart:' })
      const idem = new Idempotency({ store, scope: 'billing' })
      const runs = new Map<string, number>()
      const charge = (key: string) =>
        idem.run({ key, payload: { key } }, () => {
          runs.set(key, (runs.get(key) ?? 0) + 1)
          return { charged: key }
        })
      const keys = ['order-1', 'order-2', 'order-3', 'order-4', 'order-5']
      for (const key of keys) expect((await charge(key)).status).toBe('executed')
      for (const key of keys) expect((await charge(key)).status).toBe('replayed')

      await (server as RedisProcess).kill()
      // While Redis is down, run fails closed and says where the store is.
      const down = await charge('order-1').catch((e: unknown) => e)
      expect(down).toBeInstanceOf(StoreUnavailableError)
      expect((down as Error).message).toContain(`Redis at 127.0.0.1:${PORT} is unreachable`)

      await (server as RedisProcess).start()
      await vi.waitFor(() => expect(client.status).toBe('ready'), { timeout: 10_000 })
      // The new, empty Redis knows neither the records nor the scripts (NOSCRIPT, then EVAL):
      // every completed key runs a second time. This is what RedisStore alone loses.
      for (const key of keys) expect((await charge(key)).status).toBe('executed')
      expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(keys.map((key) => [key, 2])))
    })
  })
}
