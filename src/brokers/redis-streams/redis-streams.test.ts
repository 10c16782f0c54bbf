// The Redis Streams adapter against the real Redis (127.0.0.1:6379): duplicate publishes, a dropped
// connection, poison and undecodable entries, a handler outliving the lease and claimIdle, a
// partly failing batch, and a graceful shutdown. Each test has its own stream, deleted after. The
// suite runs once per driver (ioredis, node-redis) for the consumers and the producer; assertions
// read Redis through an ioredis `admin`.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  cleanup,
  consumerClient,
  type DriverClient,
  destroyClient,
  Effects,
  entries,
  idemFor,
  pending,
  REDIS_DRIVERS,
  streamClient,
  type TestStream,
  testStream,
  until,
} from '../../../test/support/brokers/redis-streams/redis-streams.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { consumeRedisStream, type RedisStreamConsumer } from './consume-redis-stream.js'
import { redisStreamProducer } from './redis-stream-producer.js'
import { DEAD_LETTER_FIELDS } from './stream-group.js'

interface Order {
  n: number
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe.each(REDIS_DRIVERS)('consumeRedisStream on Redis (127.0.0.1:6379) through %s', (driver) => {
    let admin: Redis
    /** The producers' client, of the driver under test. */
    let publisher: DriverClient
    let test: TestStream
    const opened: { close(): Promise<void> }[] = []
    const clients: DriverClient[] = []
    /** A client of the driver under test for one consumer (closed after the test). */
    const client = async (name?: string): Promise<DriverClient> => {
      const c = await consumerClient(driver, SERVICES.Redis.port, name)
      clients.push(c)
      return c
    }
    const started = <P, Tx>(consumer: RedisStreamConsumer<P, Tx>): RedisStreamConsumer<P, Tx> => {
      opened.push(consumer)
      return consumer
    }

    beforeAll(async () => {
      admin = streamClient(SERVICES.Redis.port)
      publisher = await consumerClient(driver, SERVICES.Redis.port)
    })
    afterAll(() => {
      admin.disconnect()
      destroyClient(publisher)
    })
    beforeEach(() => {
      test = testStream()
    })
    afterEach(async () => {
      for (const consumer of opened.splice(0)) await consumer.close()
      for (const c of clients.splice(0)) destroyClient(c)
      await cleanup(admin, test)
    })

    it('runs a message published twice with the same id once, and acknowledges both entries', async () => {
      const producer = redisStreamProducer({ client: publisher, stream: test.stream })
      await producer.publish({ id: 'order-1', payload: { n: 1 } })
      // The publisher's retry after a lost XADD reply: a second entry, the same id.
      await producer.publish({ id: 'order-1', payload: { n: 1 } })
      await producer.publish({ id: 'order-2', payload: { n: 2 } })
      const effects = new Effects()
      const results: DeliveryResult[] = []
      const c = await client()
      const consumer = started(
        await consumeRedisStream<Order>({
          client: c,
          stream: test.stream,
          group: test.group,
          idem: idemFor(c, test),
          handler: (_order, ctx) => effects.add(ctx.key),
        }),
      )
      consumer.consumer.on('settled', (result) => results.push(result))
      await until('three settled deliveries', () => results.length === 3)
      expect(Object.fromEntries(effects.counts)).toEqual({ 'order-1': 1, 'order-2': 1 })
      expect(results.map((r) => r.outcome).sort()).toEqual(['executed', 'executed', 'replayed'])
      expect(await admin.xlen(test.stream)).toBe(3)
      await until(
        'the group to have acknowledged every entry',
        async () => (await pending(admin, test.stream, test.group)) === 0,
      )
    })

    it('resumes after Redis drops both of its connections, losing and doubling nothing', async () => {
      const name = `${test.prefix}-consumer`
      const c = await client(name)
      const effects = new Effects()
      const producer = redisStreamProducer({ client: publisher, stream: test.stream })
      const publish = (from: number, to: number) =>
        Promise.all(
          Array.from({ length: to - from }, (_, i) =>
            producer.publish({ id: `order-${from + i}`, payload: { n: from + i } }),
          ),
        )
      await publish(0, 40)
      started(
        await consumeRedisStream<Order>({
          client: c,
          stream: test.stream,
          group: test.group,
          count: 5,
          claimIdle: '1s',
          idem: idemFor(c, test, '1s'),
          concurrency: 4,
          handler: async (_order, ctx) => {
            await sleep(10)
            effects.add(ctx.key)
          },
        }),
      )
      await until('a first part of the work', () => effects.total >= 10)
      const killed = await killConnections(admin, name)
      expect(killed).toBe(2) // the command connection and the XREADGROUP one
      await publish(40, 80)
      await until('every message to take effect', () => effects.counts.size === 80, 30_000)
      await until(
        'the group to have acknowledged every entry',
        async () => (await pending(admin, test.stream, test.group)) === 0,
        30_000,
      )
      expect(effects.doubled()).toEqual([])
    })

    it('dead-letters a message that keeps failing after maxAttempts, with its reason, id and delivery count', async () => {
      const producer = redisStreamProducer({ client: publisher, stream: test.stream })
      await producer.publish({ id: 'poison-1', payload: { n: 1 }, headers: { tenant: 'acme' } })
      let calls = 0
      const c = await client()
      const results: DeliveryResult[] = []
      const consumer = started(
        await consumeRedisStream<Order>({
          client: c,
          stream: test.stream,
          group: test.group,
          claimIdle: 400,
          idem: idemFor(c, test),
          maxAttempts: 3,
          backoff: () => 20,
          handler: () => {
            calls++
            throw new Error('card declined')
          },
        }),
      )
      consumer.consumer.on('settled', (result) => results.push(result))
      await until('the message to be dead-lettered', () => results.some((r) => r.outcome === 'dead_lettered'))
      expect(results.map((r) => r.outcome)).toEqual(['retried', 'retried', 'dead_lettered'])
      expect(calls).toBe(3)
      const [original] = await entries(admin, test.stream)
      const dead = await entries(admin, test.dead)
      expect(dead).toHaveLength(1)
      expect(dead[0]?.fields).toMatchObject({
        id: 'poison-1',
        payload: '{"n":1}',
        tenant: 'acme',
        [DEAD_LETTER_FIELDS.entryId]: original?.id,
        [DEAD_LETTER_FIELDS.stream]: test.stream,
        [DEAD_LETTER_FIELDS.group]: test.group,
        [DEAD_LETTER_FIELDS.deliveryCount]: '3',
      })
      expect(dead[0]?.fields[DEAD_LETTER_FIELDS.reason]).toContain('card declined')
      expect(await pending(admin, test.stream, test.group)).toBe(0)
    })

    it('dead-letters an entry it cannot decode at once, and keys an entry without an id by its entry id', async () => {
      await admin.xadd(test.stream, '*', 'id', 'bad-json', 'payload', '{not json')
      await admin.xadd(test.stream, '*', 'id', 'no-payload', 'amount', '10')
      const anonymous = (await admin.xadd(test.stream, '*', 'payload', '{"n":3}')) as string
      const c = await client()
      const seen: { key: string; payload: Order }[] = []
      started(
        await consumeRedisStream<Order>({
          client: c,
          stream: test.stream,
          group: test.group,
          idem: idemFor(c, test),
          handler: (order, ctx) => seen.push({ key: ctx.key, payload: order }),
        }),
      )
      await until(
        'two dead letters and one handled entry',
        async () => seen.length === 1 && (await admin.xlen(test.dead)) === 2,
      )
      expect(seen).toEqual([{ key: `${test.stream}:${anonymous}`, payload: { n: 3 } }])
      const reasons = (await entries(admin, test.dead)).map((e) => [e.fields.id, e.fields[DEAD_LETTER_FIELDS.reason]])
      expect(reasons).toEqual([
        ['bad-json', expect.stringContaining('cannot decode the payload')],
        ['no-payload', expect.stringContaining('no "payload" field')],
      ])
      await until(
        'the group to have acknowledged every entry',
        async () => (await pending(admin, test.stream, test.group)) === 0,
      )
    })

    it('runs a handler longer than the lease and claimIdle once, without the group redelivering it meanwhile', async () => {
      await redisStreamProducer({ client: publisher, stream: test.stream }).publish({ id: 'slow-1', payload: { n: 1 } })
      const effects = new Effects()
      const received: string[] = []
      const counts: number[] = []
      // Two members of the group, each sweeping for stale entries every 100 ms.
      for (const name of ['a', 'b']) {
        const c = await client()
        const consumer = started(
          await consumeRedisStream<Order>({
            client: c,
            stream: test.stream,
            group: test.group,
            consumerName: name,
            recoverEvery: 100,
            idem: idemFor(c, test),
            lease: 600, // claimIdle follows it
            handler: async (_order, ctx) => {
              for (let i = 0; i < 8; i++) {
                await sleep(300)
                const [row] = (await admin.call('XPENDING', test.stream, test.group, '-', '+', 1)) as [
                  string,
                  string,
                  number,
                  number,
                ][]
                counts.push(Number(row?.[3]))
              }
              effects.add(ctx.key)
            },
          }),
        )
        consumer.consumer.on('received', ({ key }) => received.push(`${name}:${key}`))
      }
      await until('the slow message to take effect', () => effects.total === 1, 30_000)
      await until(
        'the group to have acknowledged it',
        async () => (await pending(admin, test.stream, test.group)) === 0,
      )
      expect(received).toHaveLength(1)
      expect(new Set(counts)).toEqual(new Set([1]))
      expect(effects.doubled()).toEqual([])
    })

    it('retries only the failed message of a batch; the others are acknowledged once and never redone', async () => {
      const producer = redisStreamProducer({ client: publisher, stream: test.stream })
      for (let i = 1; i <= 5; i++) await producer.publish({ id: `item-${i}`, payload: { n: i } })
      const calls = new Effects()
      const effects = new Effects()
      const c = await client()
      const core = new IdempotentConsumer<Order>({
        idem: idemFor(c, test),
        backoff: () => 20,
        handler: (order, ctx) => {
          calls.add(ctx.key)
          if (order.n === 3 && (calls.counts.get(ctx.key) ?? 0) === 1) throw new Error('flaky downstream')
          effects.add(ctx.key)
        },
      })
      const batches: number[] = []
      const handleBatch = core.handleBatch.bind(core)
      core.handleBatch = (deliveries) => {
        batches.push(deliveries.length)
        return handleBatch(deliveries)
      }
      const results: DeliveryResult[] = []
      core.on('settled', (result) => results.push(result))
      started(
        await consumeRedisStream<Order>({
          client: c,
          stream: test.stream,
          group: test.group,
          claimIdle: 400,
          consumer: core,
        }),
      )
      await until('every item to take effect', () => effects.counts.size === 5)
      await until(
        'the group to have acknowledged every entry',
        async () => (await pending(admin, test.stream, test.group)) === 0,
      )
      expect(batches[0]).toBe(5)
      expect(Object.fromEntries(calls.counts)).toEqual({
        'item-1': 1,
        'item-2': 1,
        'item-3': 2,
        'item-4': 1,
        'item-5': 1,
      })
      expect(effects.doubled()).toEqual([])
      expect(results.filter((r) => r.outcome !== 'executed')).toEqual([
        expect.objectContaining({ key: 'item-3', outcome: 'retried' }),
      ])
    })

    it('hands unfinished work back on close without acknowledging it, and another member then runs it once', async () => {
      await redisStreamProducer({ client: publisher, stream: test.stream }).publish({
        id: 'stuck-1',
        payload: { n: 1 },
      })
      const effects = new Effects()
      const c1 = await client()
      let running!: () => void
      const isRunning = new Promise<void>((resolve) => {
        running = resolve
      })
      const first = await consumeRedisStream<Order>({
        client: c1,
        stream: test.stream,
        group: test.group,
        consumerName: 'first',
        idem: idemFor(c1, test, 500),
        shutdownTimeout: 100,
        handler: async (_order, ctx) => {
          running()
          await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))
        },
      })
      await isRunning
      await first.close()
      expect(effects.total).toBe(0)
      const [row] = (await admin.call('XPENDING', test.stream, test.group, '-', '+', 1)) as [string, string][]
      expect(row?.[1]).toBe('first') // still pending: not acknowledged
      const c2 = await client()
      started(
        await consumeRedisStream<Order>({
          client: c2,
          stream: test.stream,
          group: test.group,
          consumerName: 'second',
          claimIdle: 500,
          idem: idemFor(c2, test, 500),
          handler: (_order, ctx) => effects.add(ctx.key),
        }),
      )
      await until('the second member to run it', () => effects.total === 1)
      await until(
        'the group to have acknowledged it',
        async () => (await pending(admin, test.stream, test.group)) === 0,
      )
      expect(effects.doubled()).toEqual([])
    })

    it('trims the stream to about maxLen entries on publish', async () => {
      const producer = redisStreamProducer({ client: publisher, stream: test.stream, maxLen: 100 })
      await Promise.all(Array.from({ length: 600 }, (_, i) => producer.publish({ id: `m-${i}`, payload: i })))
      const length = await admin.xlen(test.stream)
      expect(length).toBeGreaterThanOrEqual(100)
      expect(length).toBeLessThan(600)
      expect(() => redisStreamProducer({ client: publisher, stream: test.stream, maxLen: 0 })).toThrow(RangeError)
    })
  })
}

/** CLIENT KILL every connection named `name`; how many there were. */
async function killConnections(admin: Redis, name: string): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST')) as string
  const ids = list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1] as string)
  for (const id of ids) await admin.call('CLIENT', 'KILL', 'ID', id)
  return ids.length
}
