// The stores the HTTP behavioural suite runs on, each isolated to the test file that makes it: a
// MemoryStore, a RedisStore under a key prefix of its own on the local Redis, a PostgresStore in a
// schema of its own on the local PostgreSQL. Every framework's suite file uses these.

import { Redis } from 'ioredis'
import pg from 'pg'
import { MemoryStore } from '../../../src/index.js'
import { PostgresStore } from '../../../src/stores/postgres/index.js'
import { RedisStore } from '../../../src/stores/redis/index.js'
import { isolatedName, SERVICES } from '../../services.js'
import type { StoreFixture } from './http-suite.test-helper.js'

export async function memoryFixture(): Promise<StoreFixture> {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
}

/** A RedisStore whose keys start with `<name>_<pid>_<random>:`; cleanup deletes them. */
export async function redisFixture(name: string): Promise<StoreFixture> {
  const client = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  const prefix = `${isolatedName(name)}:`
  const store = new RedisStore({ client, prefix })
  return {
    store,
    cleanup: async () => {
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) await client.del(...keys)
      } while (cursor !== '0')
      await store.close()
      await client.quit()
    },
  }
}

/** A PostgresStore in the schema `<name>_<pid>_<random>`; cleanup drops it. */
export async function postgresFixture(name: string): Promise<StoreFixture> {
  const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 10 })
  pool.on('error', () => {})
  const schema = isolatedName(name)
  const store = new PostgresStore({ client: pool, schema })
  await store.ensureSchema()
  return {
    store,
    cleanup: async () => {
      await store.close()
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    },
  }
}
