import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import { afterAll, describe, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { describeStoreConformance } from '../../testing/index.js'
import { SqliteStore } from '../sqlite/sqlite-store.js'
import { RedisResultCache } from './redis-result-cache.js'
import { TieredStore } from './tiered-store.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  const redis = new Redis(SERVICES.Redis.url, { maxRetriesPerRequest: 1 })
  afterAll(() => redis.quit())

  describeStoreConformance(
    {
      name: 'TieredStore (Redis cache over SQLite)',
      // Both tiers on real clocks: Redis expires copies by itself, so time cannot be faked.
      leaseMs: 300,
      ttlMs: 1300,
      create: () => {
        const dir = mkdtempSync(join(tmpdir(), 'idem-tiered-'))
        const db = new Database(join(dir, 'idem.db'))
        const primary = new SqliteStore({ client: db })
        primary.ensureSchema()
        const cache = new RedisResultCache({ client: redis, prefix: `${isolatedName('idem_tiered')}:` })
        const store = new TieredStore({ primary, cache })
        return {
          store,
          advance: (ms) => sleep(ms + 5),
          cleanup: async () => {
            await store.close()
            db.close()
            rmSync(dir, { recursive: true, force: true })
          },
        }
      },
    },
    { describe, it },
  )
}
