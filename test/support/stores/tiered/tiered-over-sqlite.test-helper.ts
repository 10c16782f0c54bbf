// A TieredStore for the conformance suite: a SQLite file of its own as the primary and a Redis
// cache under a fresh prefix; cleanup closes the store and removes the file.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { SqliteStore } from '../../../../src/stores/sqlite/sqlite-store.js'
import { type RedisCacheClient, RedisResultCache } from '../../../../src/stores/tiered/redis-result-cache.js'
import { TieredStore, type TieredStoreOptions } from '../../../../src/stores/tiered/tiered-store.js'
import type { StoreHarness } from '../../../../src/testing/index.js'
import { isolatedName } from '../../../services.js'

export function tieredOverSqlite(
  redis: RedisCacheClient,
  name: string,
  options: Pick<TieredStoreOptions, 'bloom'> = {},
): StoreHarness {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`))
  const db = new Database(join(dir, 'idem.db'))
  const primary = new SqliteStore({ client: db })
  primary.ensureSchema()
  const cache = new RedisResultCache({ client: redis, prefix: `${isolatedName(name)}:` })
  const store = new TieredStore({ primary, cache, ...options })
  return {
    store,
    // Both tiers on real clocks: Redis expires copies by itself, so time cannot be faked.
    advance: (ms) => sleep(ms + 5),
    cleanup: async () => {
      await store.close()
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
