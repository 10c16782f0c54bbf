// consumeKafka on the real broker (127.0.0.1:9092), Idem's records in Redis (or PostgreSQL in
// transaction mode): a producer's duplicate publish, poison messages to the dead-letter topic (read
// back with kcat, a client nobody here wrote), retries that keep a partition's order, a slow
// partition that does not hold up the others, and transaction mode. Each test has its own topics,
// group and keys.

import { type Consumer, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  committedOffsets,
  createTopic,
  deleteKeys,
  endOffsets,
  groupMember,
  KAFKA,
  producerClient,
  produceWithKcat,
  readWithKcat,
  redisIdem,
  unique,
  until,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { postgresRig, type TransactionRig } from '../../../test/support/transaction/transaction-rigs.test-helper.js'
import type { DeliveryResult, RunConsumerOptions, TransactionConsumerOptions } from '../../consumer/types.js'
import { type ConsumeKafkaOptions, consumeKafka, type KafkaHandle } from './consume-kafka.js'
import { DEAD_LETTER_HEADERS, MESSAGE_ID_HEADER } from './kafka-headers.js'
import type { KafkaOptions } from './kafka-options.js'
import { kafkaProducer } from './kafka-producer.js'

interface Order {
  n: number
}

/** Per key, how many times its effect happened. */
class Effects {
  readonly counts = new Map<string, number>()
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }
  get total(): number {
    let sum = 0
    for (const n of this.counts.values()) sum += n
    return sum
  }
}

const redisUp = await requireService('Redis', SERVICES.Redis.port)
const postgresUp = await requireService('PostgreSQL', SERVICES.PostgreSQL.port)
if ((await requireService('Kafka', SERVICES.Kafka.port)) && redisUp) {
  describe('consumeKafka on Kafka (127.0.0.1:9092)', () => {
    let redis: Redis
    let producer: Producer
    let prefix: string
    /** Transaction mode's PostgreSQL schema, made by its test. */
    let rig: TransactionRig | undefined
    const handles: KafkaHandle<Order, unknown>[] = []
    const clients: (Consumer | Producer)[] = []

    beforeAll(() => {
      redis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      producer = producerClient()
    })
    afterEach(async () => {
      for (const handle of handles.splice(0)) await handle.close()
      for (const client of clients.splice(0)) await client.close()
      if (prefix !== undefined) await deleteKeys(redis, prefix)
    })
    afterAll(async () => {
      await rig?.cleanup()
      await producer.close()
      redis.disconnect()
    })

    /** consumeKafka's options without the clients (and, in run mode, without the idem: one on Redis is added). */
    type Options = Omit<KafkaOptions<Order>, 'client' | 'producer'> &
      (
        | (Omit<RunConsumerOptions<Order>, 'idem'> & { idem?: RunConsumerOptions<Order>['idem'] })
        | TransactionConsumerOptions<Order, unknown>
      )

    /** A consumer of a new group, on a RedisStore under this test's prefix unless the options give an idem. */
    async function consume(
      options: Options,
      group = unique('billing'),
      deadLetters = producer,
    ): Promise<KafkaHandle<Order, unknown>> {
      prefix = unique('idem-kafka')
      const client = groupMember(group)
      clients.push(client)
      const handle = await consumeKafka<Order>({
        client,
        producer: deadLetters,
        idem: redisIdem(redis, prefix),
        ...options,
      } as ConsumeKafkaOptions<Order>)
      handles.push(handle)
      return handle
    }

    async function topicOf(partitions = 1): Promise<string> {
      const topic = unique('idem-orders')
      await createTopic(topic, partitions)
      return topic
    }

    /** Write a record with its id header to one chosen partition. */
    async function sendTo(topic: string, partition: number, id: string, payload: Order): Promise<void> {
      await producer.send({
        messages: [
          {
            topic,
            partition,
            value: Buffer.from(JSON.stringify(payload)),
            headers: new Map([[Buffer.from(MESSAGE_ID_HEADER), Buffer.from(id)]]),
          },
        ],
        acks: -1,
      })
    }

    const committed = async (group: string, topic: string, partitions = 1) =>
      String(await committedOffsets(group, topic, partitions))

    it('runs a message its producer published twice (a retry after a lost ack) once; the other copy replays', async () => {
      const topic = await topicOf()
      const orders = kafkaProducer({ client: producer, topic })
      await orders.publish({ id: 'order-1', payload: { n: 1 } })
      await orders.publish({ id: 'order-1', payload: { n: 1 } })
      await orders.publish({ id: 'order-2', payload: { n: 2 } })
      // Two records carry the same id: the broker kept both; the consumer must tell them apart.
      expect((await readWithKcat(topic)).map((r) => r.headers[MESSAGE_ID_HEADER])).toEqual([
        'order-1',
        'order-1',
        'order-2',
      ])
      const effects = new Effects()
      const results: DeliveryResult[] = []
      const group = unique('billing')
      await consume(
        {
          topics: [topic],
          on: { settled: (result) => results.push(result) },
          handler: (_order, ctx) => effects.add(ctx.key),
        },
        group,
      )
      await until('three settled deliveries', () => results.length === 3)
      expect(Object.fromEntries(effects.counts)).toEqual({ 'order-1': 1, 'order-2': 1 })
      expect(results.map((r) => `${r.outcome} ${r.key}`)).toEqual([
        'executed order-1',
        'replayed order-1',
        'executed order-2',
      ])
      await until('the group to commit past all three', async () => (await committed(group, topic)) === '3')
    })

    it('dead-letters an undecodable record at once and a failing one after maxAttempts, with where it came from and why', async () => {
      const topic = await topicOf()
      const deadLetters = `${topic}.dead-letter`
      await createTopic(deadLetters)
      // A record from a producer that is not Idem's: no id header, and its value is not JSON.
      await produceWithKcat(topic, ['account-7\tnot json, at all'])
      const orders = kafkaProducer({ client: producer, topic })
      await orders.publish({ id: 'poison-1', payload: { n: 1 }, headers: { tenant: 'acme' } })
      await orders.publish({ id: 'order-2', payload: { n: 2 } })
      const calls: string[] = []
      const group = unique('billing')
      const handle = await consume(
        {
          topics: [topic],
          maxAttempts: 2,
          backoff: () => 10,
          handler: (_order, ctx) => {
            calls.push(ctx.key)
            if (ctx.key === 'poison-1') throw new Error('card declined')
          },
        },
        group,
      )
      // Counted with the client (kcat is only asked once the records are there).
      let seen = ''
      await until(
        () => `two dead letters: ${seen}; calls ${calls}; stats ${JSON.stringify(handle.stats)}`,
        async () => {
          seen = String(await endOffsets(deadLetters))
          return seen === '2'
        },
        15_000,
      )
      await until(
        'the group to commit past all three records',
        async () => (await committed(group, topic)) === '3',
        15_000,
      )
      expect(calls).toEqual(['poison-1', 'poison-1', 'order-2'])
      expect(handle.stats.rejected).toBe(1)

      const [raw, poison] = await readWithKcat(deadLetters)
      expect(raw).toMatchObject({ key: 'account-7', value: 'not json, at all' })
      expect(raw?.headers).toMatchObject({
        [DEAD_LETTER_HEADERS.topic]: topic,
        [DEAD_LETTER_HEADERS.partition]: '0',
        [DEAD_LETTER_HEADERS.offset]: '0',
        // No id header: the key is the record's place.
        [DEAD_LETTER_HEADERS.key]: `${topic}/0/0`,
        [DEAD_LETTER_HEADERS.deliveryCount]: '1',
      })
      expect(raw?.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/^cannot decode the payload: .*JSON/)
      expect(poison).toMatchObject({ value: '{"n":1}' })
      expect(poison?.headers).toEqual({
        [MESSAGE_ID_HEADER]: 'poison-1',
        tenant: 'acme',
        [DEAD_LETTER_HEADERS.reason]: 'Error: card declined',
        [DEAD_LETTER_HEADERS.topic]: topic,
        [DEAD_LETTER_HEADERS.partition]: '0',
        [DEAD_LETTER_HEADERS.offset]: '1',
        [DEAD_LETTER_HEADERS.key]: 'poison-1',
        [DEAD_LETTER_HEADERS.deliveryCount]: '2',
      })
    }, 40_000)

    it('holds a poison record while its dead-letter topic does not exist, says so, and sends it once the topic exists', async () => {
      const topic = await topicOf()
      await produceWithKcat(topic, ['account-7\tnot json'])
      await kafkaProducer({ client: producer, topic }).publish({ id: 'order-1', payload: { n: 1 } })
      const errors: unknown[] = []
      const calls: string[] = []
      const group = unique('billing')
      // A producer that gives up on an unknown topic quickly (the shared one retries for seconds).
      const impatient = new Producer({
        clientId: 'idem-test-impatient',
        bootstrapBrokers: [KAFKA],
        retries: 1,
        retryDelay: 100,
      })
      clients.push(impatient)
      await consume(
        {
          topics: [topic],
          onError: (error) => errors.push(error),
          handler: (_order, ctx) => {
            calls.push(ctx.key)
          },
        },
        group,
        impatient,
      )
      await until('the refused dead letter to be reported', () => errors.length > 0, 15_000)
      // Never committed past a record that is neither handled nor dead-lettered.
      expect(['-1', '0']).toContain(await committed(group, topic))
      await createTopic(`${topic}.dead-letter`)
      let seen = ''
      await until(
        () => `the dead letter: ${seen}; errors ${errors.length}: ${String(errors.at(-1))}`,
        async () => {
          seen = String(await endOffsets(`${topic}.dead-letter`))
          return seen === '1'
        },
        15_000,
      )
      expect((await readWithKcat(`${topic}.dead-letter`)).map((r) => r.key)).toEqual(['account-7'])
      await until('the group to commit past both records', async () => (await committed(group, topic)) === '2', 15_000)
      expect(calls).toContain('order-1')
      expect(new Set(calls).size).toBe(calls.length)
    }, 40_000)

    it('keeps a partition in offset order through a retry: the failed message first, then the ones after it', async () => {
      const topic = await topicOf()
      const orders = kafkaProducer({ client: producer, topic })
      await orders.publishMany(Array.from({ length: 10 }, (_, n) => ({ id: `order-${n}`, payload: { n } })))
      const seen: string[] = []
      let failed = false
      const results: DeliveryResult[] = []
      await consume({
        topics: [topic],
        ordering: 'partition',
        // No delay: the failed message is due again at once, while the ones after it are still
        // on their way back from the core (withdrawn at their turn, their claims released).
        backoff: () => 0,
        on: { settled: (result) => results.push(result) },
        handler: async (order) => {
          seen.push(String(order.n))
          if (order.n === 3 && !failed) {
            failed = true
            throw new Error('the ledger is busy')
          }
        },
      })
      await until('every message executed', () => results.filter((r) => r.outcome === 'executed').length === 10)
      expect(seen).toEqual(['0', '1', '2', '3', '3', '4', '5', '6', '7', '8', '9'])
      // order-3 failed once; what was withdrawn after it came back unrun (not a failure).
      expect(results.filter((r) => r.outcome === 'retried' && r.reason?.startsWith('Error')).map((r) => r.key)).toEqual(
        ['order-3'],
      )
    })

    it('lets the other partitions go on while one partition’s handler takes its time', async () => {
      const topic = await topicOf(3)
      // Partition 0: a slow message with a backlog behind it; partitions 1 and 2: 30 quick ones.
      await sendTo(topic, 0, 'slow', { n: -1 })
      for (let n = 0; n < 10; n++) await sendTo(topic, 0, `behind-slow-${n}`, { n })
      for (let n = 0; n < 30; n++) await sendTo(topic, 1 + (n % 2), `order-${n}`, { n })
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      const effects = new Effects()
      const group = unique('billing')
      await consume(
        {
          topics: [topic],
          concurrency: 4,
          handler: async (_order, ctx) => {
            if (ctx.key === 'slow') await gate
            effects.add(ctx.key)
          },
        },
        group,
      )
      try {
        await until(
          'the 30 messages of partitions 1 and 2',
          () => [...effects.counts.keys()].filter((key) => key.startsWith('order-')).length === 30,
          10_000,
        )
        expect(effects.counts.has('slow')).toBe(false)
        expect(effects.counts.has('behind-slow-0')).toBe(false)
      } finally {
        release()
      }
      await until('the slow partition to finish', () => effects.total === 41)
      await until(
        'every partition to be committed',
        async () => (await committed(group, topic, 3)) === String(await endOffsets(topic)),
      )
    })

    describe.runIf(postgresUp)('in transaction mode (PostgreSQL 127.0.0.1:5432)', () => {
      it('writes one row per message, with the record, even for a message published twice', async () => {
        rig = await postgresRig()
        const topic = await topicOf(2)
        const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => m.id })
        for (let n = 0; n < 20; n++) await orders.publish({ id: `order-${n}`, payload: { n } })
        await orders.publish({ id: 'order-7', payload: { n: 7 } })
        await orders.publish({ id: 'order-12', payload: { n: 12 } })
        const results: DeliveryResult[] = []
        const group = unique('billing')
        const tx = rig
        await consume(
          {
            topics: [topic],
            idem: tx.idem(),
            db: tx.db,
            on: { settled: (result) => results.push(result) },
            transactionHandler: (_tx, _order, ctx) => tx.addEffect(ctx.sql, ctx.key),
          },
          group,
        )
        await until('22 settled deliveries', () => results.length === 22)
        expect(
          results
            .filter((r) => r.outcome === 'replayed')
            .map((r) => r.key)
            .sort(),
        ).toEqual(['order-12', 'order-7'])
        for (let n = 0; n < 20; n++) expect(await tx.effect(`order-${n}`)).toBe(1)
        expect(await tx.records()).toBe(20)
        await until(
          'the group to commit both partitions to their end',
          async () => (await committed(group, topic, 2)) === String(await endOffsets(topic)),
        )
      })
    })
  })
}
