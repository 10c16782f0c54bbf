// Redis restarted without persistence under a running consumer (a Redis of its own, 127.0.0.1:7401):
// the stream and the group are gone, XREADGROUP answers NOGROUP, and the adapter creates the group
// again (MKSTREAM, from '0'), so what producers add after the restart is consumed. The Idem store
// lives in the main Redis (6379) and keeps the records through the broker's restart. Once per
// driver: the consumer and the producer on ioredis, then on node-redis.

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireRedisBinaries, requireService, SERVICES } from '../../../test/services.js'
import {
  cleanup,
  consumerClient,
  destroyClient,
  Effects,
  idemFor,
  pending,
  REDIS_DRIVERS,
  streamClient,
  testStream,
  until,
} from '../../../test/support/brokers/redis-streams/redis-streams.test-helper.js'
import { type RedisProcess, startRedis } from '../../../test/support/stores/redis/redis-server.test-helper.js'
import { consumeRedisStream } from './consume-redis-stream.js'
import { redisStreamProducer } from './redis-stream-producer.js'

const PORT = 7401

if (
  (await requireRedisBinaries(`Redis Streams on its own Redis (127.0.0.1:${PORT})`)) &&
  (await requireService('Redis', SERVICES.Redis.port))
) {
  describe(`consumeRedisStream on its own Redis (127.0.0.1:${PORT}, no persistence)`, () => {
    let server: RedisProcess | undefined
    let broker: Redis
    let records: Redis
    beforeAll(async () => {
      server = await startRedis(PORT)
      broker = streamClient(PORT)
      records = streamClient(SERVICES.Redis.port)
    }, 30_000)
    afterAll(async () => {
      broker?.disconnect()
      records?.disconnect()
      await server?.stop()
    }, 30_000)

    it.each(REDIS_DRIVERS)(
      'creates the group again after NOGROUP and consumes what is published after the restart (%s)',
      async (driver) => {
        const test = testStream()
        const effects = new Effects()
        const consumer = await consumerClient(driver, PORT)
        const publisher = await consumerClient(driver, PORT)
        const errors: unknown[] = []
        const handle = await consumeRedisStream<{ n: number }>({
          client: consumer,
          stream: test.stream,
          group: test.group,
          block: '500ms',
          claimIdle: '1s',
          onError: (error) => errors.push(error),
          idem: idemFor(records, test),
          handler: (_order, ctx) => effects.add(ctx.key),
        })
        try {
          const producer = redisStreamProducer({ client: publisher, stream: test.stream })
          for (let i = 0; i < 10; i++) await producer.publish({ id: `before-${i}`, payload: { n: i } })
          await until('the first ten effects', () => effects.total === 10)

          await (server as RedisProcess).restart()
          for (let i = 0; i < 10; i++) await producer.publish({ id: `after-${i}`, payload: { n: i } })
          await until('the ten effects published after the restart', () => effects.counts.size === 20, 30_000)
          await until(
            'the group to have acknowledged every entry',
            async () => (await pending(broker, test.stream, test.group)) === 0,
          )
          // The stream holds only what came after the restart, and the group was made again.
          expect(await broker.xlen(test.stream)).toBe(10)
          const groups = (await broker.call('XINFO', 'GROUPS', test.stream)) as unknown[][]
          expect(groups.map((g) => g[1])).toEqual([test.group])
          expect(effects.doubled()).toEqual([])
        } finally {
          await handle.close()
          destroyClient(consumer)
          destroyClient(publisher)
          await cleanup(records, test)
        }
      },
      40_000,
    )
  })
}
