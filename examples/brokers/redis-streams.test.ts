// The Redis Streams example runs as written, and docs/brokers/redis-streams.md shows it as it is.

import { readFileSync } from 'node:fs'
import { recordId } from 'idem'
import { redisRecordKey } from 'idem/redis'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { payOnce, SCOPE } from './redis-streams.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('examples/brokers/redis-streams.ts', () => {
    it('charges a payment published twice once', async () => {
      const redis = new Redis(SERVICES.Redis.port, '127.0.0.1')
      const stream = isolatedName('idem_example_payments')
      try {
        const { messageId, charged } = await payOnce(redis, stream)
        expect(charged).toEqual(['order-1'])
        expect(await redis.xlen(stream)).toBe(2)
        await redis.del(redisRecordKey('idem:', recordId(SCOPE, messageId)))
      } finally {
        await redis.del(stream, `${stream}:dead`)
        redis.disconnect()
      }
    })
  })
}

it('docs/brokers/redis-streams.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/redis-streams.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/redis-streams\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./redis-streams.ts', import.meta.url), 'utf8'))
})
