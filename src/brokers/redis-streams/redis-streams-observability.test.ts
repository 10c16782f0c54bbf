// headers() and lag() of the Redis Streams adapter against the real Redis (127.0.0.1:6379), once
// per driver (ioredis, node-redis: XINFO GROUPS answers a map over node-redis' default RESP3).

import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  cleanup,
  consumerClient,
  type DriverClient,
  destroyClient,
  idemFor,
  REDIS_DRIVERS,
  streamClient,
  type TestStream,
  testStream,
  until,
} from '../../../test/support/brokers/redis-streams/redis-streams.test-helper.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { consumeRedisStream } from './consume-redis-stream.js'
import { redisStreamProducer } from './redis-stream-producer.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

function lagOf(handle: Pick<ConsumerHandle, 'lag'>): Promise<number | undefined> {
  if (handle.lag === undefined) throw new Error('the Redis Streams handle has no lag()')
  return handle.lag()
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe.each(REDIS_DRIVERS)('consumeRedisStream: headers() and lag(), through %s', (driver) => {
    let admin: Redis
    let test: TestStream
    const opened: { close(): Promise<void> }[] = []
    const clients: DriverClient[] = []
    /** A client of the driver under test (closed after the test). */
    const client = async (): Promise<DriverClient> => {
      const c = await consumerClient(driver, SERVICES.Redis.port)
      clients.push(c)
      return c
    }

    beforeAll(() => {
      admin = streamClient(SERVICES.Redis.port)
    })
    afterAll(() => admin.disconnect())
    beforeEach(() => {
      test = testStream()
    })
    afterEach(async () => {
      for (const consumer of opened.splice(0)) await consumer.close()
      for (const c of clients.splice(0)) destroyClient(c)
      await cleanup(admin, test)
    })

    it("gives the handler the entry's fields but the payload: the id and the producer's headers", async () => {
      const producer = redisStreamProducer({ client: await client(), stream: test.stream, payloadField: 'body' })
      await producer.publish({
        id: 'order-1',
        payload: { n: 1 },
        headers: { traceparent: TRACEPARENT, 'X-Other': 'v' },
      })
      const seen: Readonly<Record<string, string | undefined>>[] = []
      let sameRecord = false
      const consumer = await consumeRedisStream<{ n: number }>({
        client: await client(),
        stream: test.stream,
        group: test.group,
        payloadField: 'body',
        idem: idemFor(admin, test),
        handler: (_payload, ctx) => {
          const headers = ctx.delivery.headers?.() ?? {}
          sameRecord = ctx.delivery.headers?.() === headers
          seen.push(headers)
        },
      })
      opened.push(consumer)
      await until('the entry handled', () => seen.length === 1)
      expect(seen[0]).toEqual({ id: 'order-1', traceparent: TRACEPARENT, 'X-Other': 'v' })
      expect(sameRecord).toBe(true)
    })

    it("counts the group's undelivered entries (XINFO GROUPS lag) as lag, down to 0 once drained", async () => {
      const producer = redisStreamProducer({ client: await client(), stream: test.stream })
      for (let i = 0; i < 5; i++) await producer.publish({ id: `order-${i}`, payload: { n: i } })
      let release!: () => void
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let started = 0
      const settled: DeliveryResult[] = []
      const consumer = await consumeRedisStream<{ n: number }>({
        client: await client(),
        stream: test.stream,
        group: test.group,
        concurrency: 1,
        idem: idemFor(admin, test),
        on: { settled: (result) => settled.push(result) },
        handler: async () => {
          started++
          await held
        },
      })
      opened.push(consumer)
      // One entry read (capacity 1) and held by the handler: four not yet delivered to the group.
      await until('the first handler to start', () => started === 1)
      await until(
        () => 'lag 4',
        async () => (await lagOf(consumer)) === 4,
      )
      release()
      await until('all five settled', () => settled.length === 5)
      await until(
        () => 'lag 0',
        async () => (await lagOf(consumer)) === 0,
      )
      // More entries while the consumer keeps up: the lag goes back to 0.
      await producer.publish({ id: 'order-late', payload: { n: 9 } })
      await until('the late entry settled', () => settled.length === 6)
      expect(await lagOf(consumer)).toBe(0)
      await consumer.close()
      expect(await lagOf(consumer)).toBeUndefined()
    })

    it('rejects lag() with the server error when the stream key is not a stream, without stopping the consumer', async () => {
      const settled: DeliveryResult[] = []
      const consumer = await consumeRedisStream<{ n: number }>({
        client: await client(),
        stream: test.stream,
        group: test.group,
        idem: idemFor(admin, test),
        onError: () => {},
        on: { settled: (result) => settled.push(result) },
        handler: () => {},
      })
      opened.push(consumer)
      expect(await lagOf(consumer)).toBe(0)
      // In one MULTI, so that the consumer cannot re-create the stream in between.
      await admin.multi().del(test.stream).set(test.stream, 'not a stream').exec()
      await expect(lagOf(consumer)).rejects.toThrow(/WRONGTYPE/)
      await admin.del(test.stream)
      // The consumer re-creates its group (NOGROUP) and goes on.
      const producer = redisStreamProducer({ client: await client(), stream: test.stream })
      await until(
        () => 'the group to be back',
        async () => (await lagOf(consumer).catch(() => -1)) === 0,
      )
      await producer.publish({ id: 'order-after', payload: { n: 1 } })
      await until('the entry published after to be handled', () => settled.length === 1)
    })
  })
}
