// The broker restarted under a consumer at work, on a private broker of this test's own
// (127.0.0.1:19292): the consumer notices, recovers by itself (no restart of the consumer, no help
// from the test) and finishes every message, each effect once. Idem's records are in Redis.

import type { Consumer, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
    afterAll(async () => {
      await handle?.close()
      await client?.close(true)
      await producer?.close(true)
      await kafka.kill() // no need to wait for a graceful shutdown of a broker whose data goes
      await kafka.destroy()
      await deleteKeys(redis, prefix)
      redis.disconnect()
    }, 60_000)

    it('recovers by itself and finishes every message, each once', async () => {
      const topic = unique('idem-restart')
      const group = unique('billing')
      await createTopic(topic, PARTITIONS, kafka.broker)
      producer = producerClient(kafka.broker, 'idem-test-restart')
      const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => m.id })
      const publish = (from: number, to: number) =>
        orders.publishMany(
          Array.from({ length: to - from }, (_, i) => ({ id: `order-${from + i}`, payload: { n: from + i } })),
        )
      await publish(0, 60)

      const effects = new Map<string, number>()
      const errors: unknown[] = []
      client = groupMember(group, kafka.broker)
      handle = await consumeKafka<{ n: number }>({
        client,
        producer,
        topics: [topic],
        idem: redisIdem(redis, prefix),
        onError: (error) => errors.push(error),
        handler: async (_order, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 20))
          effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
        },
      })
      await until('a first part of the work', () => effects.size >= 15)
      expect(effects.size).toBeLessThan(60)

      await kafka.restart()
      await publish(60, 90)
      const end = await endOffsets(topic, kafka.broker)
      let state = ''
      await until(
        () => `every message to take effect and be committed: ${state}`,
        async () => {
          const committed = await committedOffsets(group, topic, PARTITIONS, kafka.broker).catch(() => [])
          state = `${effects.size} of 90 effects, committed ${committed}, end ${end}, restarts ${handle?.stats.restarts}`
          return effects.size === 90 && String(committed) === String(end)
        },
        60_000,
      )
      expect([...effects].filter(([, n]) => n !== 1)).toEqual([])
      // It did notice: the stream failed while the broker was away and was opened again.
      expect(errors.length + (handle?.stats.restarts ?? 0)).toBeGreaterThan(0)
    }, 120_000)
  })
}
