// Messages received in one batch are acknowledged one by one, and a slow one is kept invisible by
// extends (changeInvisibleDuration) for longer than its invisible duration: the others are acked
// as soon as their outcome is stored and never come back as work. One whose ack is lost (the
// wrapped client drops it) comes back after the invisible duration and is replayed from its
// record, not run again. Against the real broker (test/services/rocketmq.sh).

import type { MessageView, Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  createTopics,
  ROCKETMQ_GRPC_PORT,
  send,
  startProducer,
  startSimpleConsumer,
  uniqueName,
  waitFor,
} from '../../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeRocketMQ } from './rocketmq-consumer.js'
import type { SimpleConsumerLike } from './rocketmq-consumer-driver.js'

const INVISIBLE_MS = 10_000
/** Longer than the invisible duration: only extends keep it from being delivered again meanwhile. */
const SLOW_MS = 13_000

if (await requireService('RocketMQ', ROCKETMQ_GRPC_PORT)) {
  describe('consumeRocketMQ: a batch with a slow message and a lost ack', () => {
    const topic = uniqueName('idem_rmq_checkpoint')
    let producer: Producer
    let client: SimpleConsumer

    beforeAll(async () => {
      await createTopics(topic, `${topic}_dead`)
      producer = await startProducer()
      client = await startSimpleConsumer({ group: uniqueName('g'), subscriptions: { [topic]: '*' } })
    }, 60_000)
    afterAll(async () => {
      await client?.shutdown().catch(() => {})
      await producer?.shutdown()
    })

    it('acks the fast ones at once, extends the slow one, replays the one whose ack was lost', {
      timeout: 35_000,
    }, async () => {
      const keys = ['slow', 'fast-1', 'fast-2', 'lost']
      for (const key of keys) await send(producer, topic, { key }, { properties: { 'idem-key': key } })

      // The real client, except that the first ack of "lost" never reaches the broker.
      const batches: string[][] = []
      const acked: string[] = []
      let dropped = 0
      const wrapped: SimpleConsumerLike<MessageView> = {
        receive: async (max, invisible) => {
          const views = await client.receive(max, invisible)
          if (views.length > 0) batches.push(views.map((v) => v.properties.get('idem-key') ?? '?'))
          return views
        },
        ack: async (view) => {
          const key = view.properties.get('idem-key') ?? '?'
          if (key === 'lost' && dropped++ === 0) return
          await client.ack(view)
          acked.push(key)
        },
        changeInvisibleDuration: (view, ms) => client.changeInvisibleDuration(view, ms),
      }

      const runs: string[] = []
      const received: { key: string; deliveryCount: number }[] = []
      const settled: DeliveryResult[] = []
      const brokerErrors: unknown[] = []
      const handle = await consumeRocketMQ({
        client: wrapped,
        invisibleDuration: INVISIBLE_MS,
        deadLetterTopic: `${topic}_dead`,
        deadLetterProducer: producer,
        idem: new Idempotency({ store: new MemoryStore(), lease: '30s' }),
        concurrency: 4,
        handler: async (_payload, ctx) => {
          runs.push(ctx.key)
          if (ctx.key === 'slow') await new Promise((resolve) => setTimeout(resolve, SLOW_MS))
        },
        on: {
          received: (r) => received.push(r),
          settled: (r) => settled.push(r),
          broker_error: (e) => brokerErrors.push(e),
        },
      })
      try {
        await waitFor(
          'the slow message done and the lost ack replayed',
          () =>
            settled.some((r) => r.key === 'slow') && settled.some((r) => r.key === 'lost' && r.outcome === 'replayed'),
          SLOW_MS + 15_000,
        )
        // The fast ones were acknowledged while the slow one still ran.
        expect(acked.indexOf('fast-1')).toBeLessThan(acked.indexOf('slow'))
        expect(acked.indexOf('fast-2')).toBeLessThan(acked.indexOf('slow'))
        // Each handler ran once; only the message whose ack was lost came back, as a replay.
        expect(runs.sort()).toEqual(['fast-1', 'fast-2', 'lost', 'slow'])
        const deliveries = (key: string) => received.filter((r) => r.key === key).map((r) => r.deliveryCount)
        expect(deliveries('slow')).toEqual([1])
        expect(deliveries('fast-1')).toEqual([1])
        expect(deliveries('fast-2')).toEqual([1])
        expect(deliveries('lost')).toEqual([1, 2])
        expect(settled.filter((r) => r.key === 'lost').map((r) => r.outcome)).toEqual(['executed', 'replayed'])
        expect(settled.find((r) => r.key === 'slow')?.outcome).toBe('executed')
        expect(acked.filter((k) => k === 'lost')).toEqual(['lost'])
        expect(brokerErrors).toEqual([])
        // The slow one came in a batch with others, all claimed together.
        expect(batches.find((b) => b.includes('slow'))?.length).toBeGreaterThan(1)
      } finally {
        await handle.close()
      }
    })
  })
}
