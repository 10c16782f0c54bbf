// The broker going away under a consumer at work, on a private broker of this test's own
// (127.0.0.1:19292): restarted (stop, start), and killed then down for far longer than the client
// retries (a crash and a slow start). Each time the consumer notices, recovers by itself (no
// restart of the consumer, no help from the test) and finishes every message, each effect once.
// Idem's records are in Redis.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Consumer, ConsumerOptions, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing, requireService, SERVICES } from '../../../test/services.js'
import {
  committedOffsets,
  createTopic,
  deleteKeys,
  endOffsets,
  groupMember,
  PrivateKafka,
  producerClient,
  redisIdem,
  toolsAvailable,
  unique,
  until,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { consumeKafka, type KafkaHandle } from './consume-kafka.js'
import { kafkaProducer } from './kafka-producer.js'

const PORT = 19292
const PARTITIONS = 3

const redisUp = await requireService('Redis', SERVICES.Redis.port)
const missingTools = await toolsAvailable()
if (missingTools !== undefined) {
  reportMissing('a Kafka consumer across a broker restart', missingTools, 'can start a Kafka broker of its own')
} else if (redisUp) {
  describe(`a Kafka consumer across a broker restart (private broker 127.0.0.1:${PORT})`, () => {
    const kafka = new PrivateKafka(PORT)
    const prefix = unique('idem-kafka-restart')
    let redis: Redis
    let producer: Producer | undefined
    let client: Consumer | undefined
    let handle: KafkaHandle<{ n: number }> | undefined

    beforeAll(async () => {
      redis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      await kafka.start()
    }, 120_000)
    afterEach(async () => {
      await handle?.close()
      await client?.close(true)
      await producer?.close(true)
      handle = client = producer = undefined
    }, 60_000)
    afterAll(async () => {
      await kafka.kill() // no need to wait for a graceful shutdown of a broker whose data goes
      await kafka.destroy()
      await deleteKeys(redis, prefix)
      redis.disconnect()
    }, 60_000)

    /**
     * 60 messages, a consumer at work on them, `away()` once 15 have taken effect, 30 more
     * published, then every one of the 90 must take effect once and be committed.
     */
    async function consumeAcross(
      away: (errors: unknown[]) => Promise<void>,
      clientOptions: Partial<ConsumerOptions<Buffer, Buffer, Buffer, Buffer>> = {},
    ): Promise<{ errors: unknown[]; restarts: number }> {
      const topic = unique('idem-restart')
      const group = unique('billing')
      await createTopic(topic, PARTITIONS, kafka.broker)
      producer = producerClient(kafka.broker, 'idem-test-restart')
      const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => m.id })
      const publish = (from: number, to: number) =>
        orders.publishMany(
          // Keys of this topic's own: both tests use one Idem prefix.
          Array.from({ length: to - from }, (_, i) => ({ id: `${topic}:order-${from + i}`, payload: { n: from + i } })),
        )
      await publish(0, 60)

      const effects = new Map<string, number>()
      const errors: unknown[] = []
      const clientErrors: unknown[] = []
      client = groupMember(group, kafka.broker, clientOptions)
      // For the failure message: a client that gives up on its group emits 'error'.
      client.on('error', (error: unknown) => clientErrors.push(error))
      const consumer = await consumeKafka<{ n: number }>({
        client,
        producer,
        topics: [topic],
        idem: redisIdem(redis, prefix),
        onError: (error) => errors.push(error),
        handler: async (_order, ctx) => {
          await sleep(20)
          effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
        },
      })
      handle = consumer
      await until('a first part of the work', () => effects.size >= 15)
      expect(effects.size).toBeLessThan(60)

      await away(errors)
      await publish(60, 90)
      const end = await endOffsets(topic, kafka.broker)
      let state = ''
      await until(
        () => `every message to take effect and be committed: ${state}`,
        async () => {
          const committed = await committedOffsets(group, topic, PARTITIONS, kafka.broker).catch(() => [])
          state = `${effects.size} of 90 effects, committed ${committed}, end ${end}, restarts ${consumer.stats.restarts}, client errors: ${clientErrors.map(String).join('; ') || 'none'}`
          return effects.size === 90 && String(committed) === String(end)
        },
        60_000,
      )
      expect([...effects].filter(([, n]) => n !== 1)).toEqual([])
      return { errors, restarts: consumer.stats.restarts }
    }

    it('recovers by itself and finishes every message, each once', async () => {
      const { errors, restarts } = await consumeAcross(() => kafka.restart())
      // It did notice: the stream failed while the broker was away and was opened again.
      expect(errors.length + restarts).toBeGreaterThan(0)
    }, 120_000)

    it('comes back by itself after the broker was down far longer than the client retries', async () => {
      const { restarts } = await consumeAcross(
        async (errors) => {
          await kafka.kill()
          // The client's retries (2, 200 ms apart) run out many times over; each failure is reported.
          await sleep(12_000)
          expect(errors.length).toBeGreaterThan(0)
          await kafka.start()
        },
        { retries: 2, retryDelay: 200 },
      )
      // It opened its stream again rather than waiting on a dead one.
      expect(restarts).toBeGreaterThan(0)
    }, 180_000)
  })
}
