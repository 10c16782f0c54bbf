// The HTTP behavioural suite on Koa 3 and Koa 2, unchanged, over real sockets: on MemoryStore,
// and on RedisStore and PostgresStore when those services run.

import { Redis } from 'ioredis'
import pg from 'pg'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { KOA_RIGS } from '../../../test/support/http/koa-rig.test-helper.js'
import { MemoryStore } from '../../index.js'
import { PostgresStore } from '../../stores/postgres/index.js'
import { RedisStore } from '../../stores/redis/index.js'

describeHttpSuite(
  'MemoryStore',
  async () => {
    const store = new MemoryStore()
    return { store, cleanup: () => store.close() }
  },
  KOA_RIGS,
)

if (await requireService('Redis', 6379)) {
  describeHttpSuite(
    'RedisStore',
    async () => {
      const client = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 })
      client.on('error', () => {})
      const prefix = `${isolatedName('idem_koa')}:`
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
    },
    KOA_RIGS,
  )
}

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeHttpSuite(
    'PostgresStore',
    async () => {
      const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 10 })
      pool.on('error', () => {})
      const schema = isolatedName('idem_koa')
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
    },
    KOA_RIGS,
  )
}
