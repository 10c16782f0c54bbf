// The conformance suite on ShardedStores over real servers: three PostgreSQL schemas, two
// MariaDB databases. Each record lives on one shard, so every behaviour must hold as on one store.

import { afterAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { newPool, sleep } from '../../../test/support/stores/postgres/postgres.test-helper.js'
import {
  mariadbDatabases,
  shardedOverMariadb,
  shardedOverPostgresSchemas,
} from '../../../test/support/stores/sharded.test-helper.js'
import type { BeginResult } from '../../contract/types.js'
import { describeStoreConformance } from '../../testing/index.js'
import { ShardUnavailableError } from './sharded-store.js'

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  const pool = newPool(20)
  afterAll(() => pool.end())

  describeStoreConformance(
    {
      name: 'ShardedStore (3 PostgreSQL schemas)',
      // The server's clock cannot be moved: wait it out, with a margin for the round trip.
      leaseMs: 300,
      ttlMs: 1300,
      create: async () => {
        const { store, cleanup } = await shardedOverPostgresSchemas(pool, 3)
        return { store, advance: (ms) => sleep(ms + 25), cleanup }
      },
    },
    { describe, it },
  )

  it('a closed PostgreSQL shard fails only its keys of a beginMany', async () => {
    const { store, cleanup } = await shardedOverPostgresSchemas(pool, 3)
    try {
      const down = store.shards[0]
      await down?.store.close()
      const items = Array.from({ length: 30 }, (_, i) => ({ id: `k${i}`, fingerprint: 'fp' }))
      const error = (await store
        .beginMany(items, 1000, 5000)
        .catch((e: unknown) => e)) as ShardUnavailableError<BeginResult>
      expect(error).toBeInstanceOf(ShardUnavailableError)
      items.forEach((item, i) => {
        if (store.shardOf(item.id) === down?.name) expect(error.failures.map((f) => f.index)).toContain(i)
        else expect(error.results[i]?.outcome).toBe('acquired')
      })
      expect(error.failures.length).toBeGreaterThan(0)
    } finally {
      await cleanup()
    }
  })
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  const databases = await mariadbDatabases(2)
  afterAll(() => databases.drop())

  describeStoreConformance(
    {
      name: 'ShardedStore (2 MariaDB databases)',
      leaseMs: 300,
      ttlMs: 1300,
      create: async () => {
        const { store, cleanup } = await shardedOverMariadb(databases.pools)
        return { store, advance: (ms) => sleep(ms + 5), cleanup }
      },
    },
    { describe, it },
  )
}
