// The broker gone for far longer than the client retries (SIGKILL, then 12 s down: a crash and a
// slow start), under a consumer at work, on a private broker of this test's own (127.0.0.1:19296):
// the consumer reports what fails meanwhile, comes back by itself once the broker does (no restart
// of the consumer, no help from the test), and finishes every message, each effect once. The
// graceful restart is kafka-restart.test.ts.

import { setTimeout as sleep } from 'node:timers/promises'
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

// Its controller listens on PORT + 1: clear of the restart test's 19292-19293 when both run at once.
const PORT = 19296
const PARTITIONS = 3

const redisUp = await requireService('Redis', SERVICES.Redis.port)
const missingTools = await toolsAvailable()
if (missingTools !== undefined) {
  reportMissing('a Kafka consumer across a long broker outage', missingTools, 'can start a Kafka broker of its own')
} else if (redisUp) {
  describe(`a Kafka consumer across a long broker outage (private broker 127.0.0.1:${PORT})`, () => {
    const kafka = new PrivateKafka(PORT)
    const prefix = unique('idem-kafka-outage')
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
      await kafka.kill()
      await kafka.destroy()
      await deleteKeys(redis, prefix)
      redis.disconnect()
    }, 60_000)

    it('comes back by itself once the broker does, and finishes every message, each once', async () => {
      const topic = unique('idem-outage')
      const group = unique('billing')
      await createTopic(topic, PARTITIONS, kafka.broker)
      producer = producerClient(kafka.broker, 'idem-test-outage')
      const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => m.id })
      const publish = (from: number, to: number) =>
        orders.publishMany(
          Array.from({ length: to - from }, (_, i) => ({ id: `order-${from + i}`, payload: { n: from + i } })),
        )
      await publish(0, 60)

      const effects = new Map<string, number>()
      const errors: unknown[] = []
      const clientErrors: unknown[] = []
      client = groupMember(group, kafka.broker, { retries: 2, retryDelay: 200 })
      // Recorded for the failure message: a client that gives up on its group emits 'error'.
      client.on('error', (error: unknown) => clientErrors.push(error))
      handle = await consumeKafka<{ n: number }>({
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
      await until('a first part of the work', () => effects.size >= 15)

      await kafka.kill()
      // The client's retries (2, 200 ms apart) run out many times over.
      await sleep(12_000)
      expect(errors.length).toBeGreaterThan(0)
      await kafka.start()
      await publish(60, 90)
      const end = await endOffsets(topic, kafka.broker)
      let state = ''
      await until(
        () => `every message to take effect and be committed: ${state}`,
        async () => {
          const committed = await committedOffsets(group, topic, PARTITIONS, kafka.broker).catch(() => [])
          state = `${effects.size} of 90 effects, committed ${committed}, end ${end}, restarts ${handle?.stats.restarts}, client errors: ${clientErrors.map(String).join('; ') || 'none'}`
          return effects.size === 90 && String(committed) === String(end)
        },
        60_000,
      )
      expect([...effects].filter(([, n]) => n !== 1)).toEqual([])
      // It noticed, and opened its stream again rather than waiting on a dead one.
      expect(handle.stats.restarts).toBeGreaterThan(0)
    }, 180_000)
  })
}
