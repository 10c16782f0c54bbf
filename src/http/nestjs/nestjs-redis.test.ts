// The HTTP behavioural suite, unchanged, on NestJS (Express and Fastify platforms) over RedisStore
// (the local Redis, a key prefix of this file's own).

import { Redis } from 'ioredis'
import { isolatedName, requireService } from '../../../test/services.js'
import { describeHttpSuite } from '../../../test/support/http/http-suite.test-helper.js'
import { NEST_RIGS } from '../../../test/support/http/nestjs-rig.test-helper.js'
import { RedisStore } from '../../stores/redis/index.js'

if (await requireService('Redis', 6379)) {
  describeHttpSuite(
    'RedisStore',
    async () => {
      const client = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 })
      client.on('error', () => {})
      const prefix = `${isolatedName('idem_nest_http')}:`
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
    NEST_RIGS,
  )
}
