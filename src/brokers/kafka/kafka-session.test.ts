// A handler that runs longer than the group's session timeout, on the real broker (127.0.0.1:9092):
// the member keeps heartbeating while it works, so the group never takes its partition away: no
// rebalance, the same member and generation throughout, and the message handled once.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Consumer, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  committedOffsets,
  createTopic,
  deleteKeys,
  groupMember,
  producerClient,
  redisIdem,
  unique,
  until,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { consumeKafka, type KafkaHandle } from './consume-kafka.js'
import { kafkaProducer } from './kafka-producer.js'

const SESSION_TIMEOUT_MS = 3000
const HANDLER_MS = 8000

const redisUp = await requireService('Redis', SERVICES.Redis.port)
if ((await requireService('Kafka', SERVICES.Kafka.port)) && redisUp) {
  describe('a Kafka handler longer than the session timeout (127.0.0.1:9092)', () => {
    const prefix = unique('idem-kafka-session')
    let redis: Redis
    let producer: Producer
    let client: Consumer | undefined
    let handle: KafkaHandle<{ n: number }> | undefined

    beforeAll(() => {
      redis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      producer = producerClient()
    })
    afterAll(async () => {
      await handle?.close()
      await client?.close()
      await producer.close()
      await deleteKeys(redis, prefix)
      redis.disconnect()
    })

    it('keeps its partition and its membership while the handler works, and handles the message once', async () => {
      const topic = unique('idem-long')
      const group = unique('billing')
      await createTopic(topic)
      const orders = kafkaProducer({ client: producer, topic })
      await orders.publish({ id: 'long-1', payload: { n: 1 } })
      await orders.publish({ id: 'quick-2', payload: { n: 2 } })

      const member = groupMember(group, undefined, {
        sessionTimeout: SESSION_TIMEOUT_MS,
        heartbeatInterval: 500,
        rebalanceTimeout: SESSION_TIMEOUT_MS,
      })
      client = member
      const joins: { memberId: string; generationId?: number }[] = []
      let rebalances = 0
      member.on('consumer:group:join', (payload: { memberId: string; generationId?: number }) => joins.push(payload))
      member.on('consumer:group:rebalance', () => rebalances++)
      const calls: string[] = []
      const results: DeliveryResult[] = []
      handle = await consumeKafka<{ n: number }>({
        client: member,
        producer,
        topics: [topic],
        idem: redisIdem(redis, prefix),
        on: { settled: (result) => results.push(result) },
        handler: async (_order, ctx) => {
          calls.push(ctx.key)
          if (ctx.key === 'long-1') await sleep(HANDLER_MS)
        },
      })
      const { memberId, generationId } = member
      expect(joins).toHaveLength(1)
      await until('the long handler to start', () => calls.length === 1)
      const startedAt = Date.now()

      await until(
        'both messages to be committed',
        async () => String(await committedOffsets(group, topic, 1)) === '2',
        25_000,
      )
      // The handler did outlive the session by far.
      expect(Date.now() - startedAt).toBeGreaterThan(2 * SESSION_TIMEOUT_MS)
      expect(calls).toEqual(['long-1', 'quick-2'])
      expect(results.map((r) => `${r.outcome} ${r.key}`)).toEqual(['executed long-1', 'executed quick-2'])
      // Never fenced out: the same member of the same generation, no join after the first.
      expect(member.memberId).toBe(memberId)
      expect(member.generationId).toBe(generationId)
      expect(joins).toHaveLength(1)
      expect(rebalances).toBe(0)
      expect(handle.stats.revoked).toBe(0)
    }, 30_000)
  })
}
