import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { requireRedisBinaries } from '../../../test/services.js'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { destroyClient, driverClient, isReady, REDIS_DRIVERS } from '../../../test/support/redis-clients.test-helper.js'
import { type RedisProcess, startRedis } from '../../../test/support/stores/redis/redis-server.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { linkTo } from '../../drivers/redis-link.js'
import { SqliteStore } from '../sqlite/sqlite-store.js'
import { RedisResultCache } from './redis-result-cache.js'
import { TieredStore } from './tiered-store.js'

// Its own port: test files run in parallel, and redis-restart.test.ts uses 7201.
const PORT = 7202

if (await requireRedisBinaries(`TieredStore over its own Redis (127.0.0.1:${PORT})`)) {
  describe(`TieredStore when its Redis (127.0.0.1:${PORT}) fails and restarts empty`, () => {
    let server: RedisProcess | undefined
    let dir: string
    beforeAll(async () => {
      server = await startRedis(PORT)
      dir = mkdtempSync(join(tmpdir(), 'idem-tiered-restart-'))
    }, 30_000)
    afterAll(async () => {
      await server?.stop()
      rmSync(dir, { recursive: true, force: true })
    }, 30_000)

    it.each(REDIS_DRIVERS)(
      'never executes a completed key again, and refills the cache once Redis is back (%s)',
      async (driver) => {
        // Fails commands while Redis is down instead of queueing them, and reconnects once it is back.
        const client = await driverClient(driver, PORT, { failFast: true })
        const db = new Database(join(dir, `idem-${driver}.db`))
        const sqlite = new SqliteStore({ client: db })
        sqlite.ensureSchema()
        const primary = new FaultyStore(sqlite) // counts the primary's begins
        const store = new TieredStore({
          primary,
          cache: new RedisResultCache({ client, prefix: `idem:done:${driver}:` }),
        })
        const idem = new Idempotency({ store, scope: 'billing' })
        const runs = new Map<string, number>()
        const charge = (key: string) =>
          idem.run({ key, payload: { key } }, () => {
            runs.set(key, (runs.get(key) ?? 0) + 1)
            return { charged: key }
          })
        const keys = ['order-1', 'order-2', 'order-3', 'order-4', 'order-5']

        for (const key of keys) expect((await charge(key)).status).toBe('executed')
        let begins = primary.calls.begin
        for (const key of keys) expect((await charge(key)).status).toBe('replayed')
        expect(primary.calls.begin, 'duplicates answered by Redis').toBe(begins)

        await (server as RedisProcess).kill()
        // Redis is down: duplicates are answered by SQLite, and nothing fails.
        for (const key of keys) expect((await charge(key)).status).toBe('replayed')
        expect(store.cacheErrors).toBeGreaterThan(0)

        await (server as RedisProcess).start()
        await vi.waitFor(() => expect(isReady(client)).toBe(true), { timeout: 10_000 })
        expect(await linkTo(client).send(undefined, ['DBSIZE'])).toBe(0) // the restarted Redis is empty
        for (const key of keys) expect((await charge(key)).status).toBe('replayed')
        // ...and those replays put the copies back, so the next duplicates stay in Redis again.
        begins = primary.calls.begin
        for (const key of keys) expect((await charge(key)).status).toBe('replayed')
        expect(primary.calls.begin).toBe(begins)

        expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(keys.map((key) => [key, 1])))
        await store.close()
        db.close()
        destroyClient(client)
      },
      30_000,
    )
  })
}
