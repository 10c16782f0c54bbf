// The Redis window on a real Redis, through both drivers: exact, one key per event that Redis
// drops when the window ends, atomic under racing consumers, and failing closed when Redis is gone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import {
  type DriverClient,
  destroyClient,
  driverClient,
  REDIS_DRIVERS,
} from '../../test/support/redis-clients.test-helper.js'
import type { AnyRedisClient } from '../drivers/redis-link.js'
import { StoreUnavailableError } from '../errors.js'
import { redisWindow } from './redis-window.js'
import { DedupWindow } from './window.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

if (await requireService('Redis', 6379)) {
  describe.each(REDIS_DRIVERS)('DedupWindow on redisWindow() (%s)', (driver) => {
    const prefix = `idem:test:window:${driver}:${process.pid}:${Date.now()}:`
    const clients: DriverClient[] = []
    let client: DriverClient

    async function open(): Promise<DriverClient> {
      const c = await driverClient(driver)
      clients.push(c)
      return c
    }
    const raw = (args: string[]) =>
      'call' in client ? client.call(args[0] as string, ...args.slice(1)) : client.sendCommand(args)

    beforeAll(async () => {
      client = await open()
    })
    afterAll(async () => {
      const keys = (await raw(['KEYS', `${prefix}*`])) as string[]
      if (keys.length > 0) await raw(['DEL', ...keys])
      for (const c of clients) destroyClient(c)
    })

    it('reports a repeat inside the window, and Redis drops the mark when the window ends', async () => {
      const store = redisWindow({ client: client as AnyRedisClient, prefix: `${prefix}exp:` })
      const window = new DedupWindow({ store, window: 300 })
      expect(await window.seen('sensor-1', 'e1')).toBe(false)
      expect(await window.seen('sensor-1', 'e1')).toBe(true)
      expect(await window.seen('sensor-2', 'e1')).toBe(false)
      const ttl = Number(await raw(['PTTL', store.keyOf({ source: 'sensor-1', id: 'e1' })]))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(300)
      await sleep(350)
      expect(await raw(['EXISTS', store.keyOf({ source: 'sensor-1', id: 'e1' })])).toBe(0)
      expect(await window.seen('sensor-1', 'e1')).toBe(false)
    })

    it('answers a batch in one pipeline, in order, a repeat inside the batch counting as one', async () => {
      const window = new DedupWindow({ store: redisWindow({ client: client as AnyRedisClient, prefix }), window: '1m' })
      await window.seen('s', 'old')
      const answers = await window.seenMany([
        { source: 's', id: 'old' },
        { source: 's', id: 'new' },
        { source: 's', id: 'new' },
        { source: 't', id: 'new' },
      ])
      expect(answers).toEqual([true, false, true, false])
      await window.forget('s', 'new')
      expect(
        await window.seenMany([
          { source: 's', id: 'new' },
          { source: 't', id: 'new' },
        ]),
      ).toEqual([false, true])
    })

    it('tells exactly one of many racing consumers that an id is new', async () => {
      const racers = await Promise.all(Array.from({ length: 8 }, () => open()))
      const windows = racers.map(
        (c) =>
          new DedupWindow({
            store: redisWindow({ client: c as AnyRedisClient, prefix: `${prefix}race:` }),
            window: '1m',
          }),
      )
      for (let round = 0; round < 20; round++) {
        // Every racer asks 5 times for the same id, singly and in batches, all at once.
        const asks = windows.flatMap((w) => [
          w.seen('s', `id-${round}`),
          w.seen('s', `id-${round}`),
          w
            .seenMany([
              { source: 's', id: `id-${round}` },
              { source: 's', id: `id-${round}` },
            ])
            .then((a) => a[0] as boolean),
          w.seen('s', `id-${round}`),
        ])
        const answers = await Promise.all(asks)
        expect(answers.filter((repeat) => !repeat)).toHaveLength(1)
      }
    })

    it('fails closed with a StoreUnavailableError naming Redis when it cannot be reached', async () => {
      if (driver === 'node-redis') {
        // node-redis never resolves connect() to a dead port: a client destroyed under the window
        // fails every command the same way a lost connection does.
        const gone = await open()
        destroyClient(gone)
        const window = new DedupWindow({ store: redisWindow({ client: gone as AnyRedisClient, prefix }), window: '1m' })
        const error = await window.seen('s', 'x').catch((e: unknown) => e)
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as Error).message).toMatch(/dedup window's Redis at 127\.0\.0\.1:6379 is unreachable/)
        return
      }
      // Nothing listens on port 1: every command fails, none is reported new.
      const down = await driverClient(driver, 1, { failFast: true })
      clients.push(down)
      const window = new DedupWindow({ store: redisWindow({ client: down as AnyRedisClient, prefix }), window: '1m' })
      const error = await window
        .seenMany([
          { source: 's', id: 'x' },
          { source: 's', id: 'y' },
        ])
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect((error as Error).message).toMatch(/dedup window's Redis at 127\.0\.0\.1:1 is unreachable/)
    }, 20_000)
  })
}
