// consumeRocketMQ against the real broker (RocketMQ 5.3.3 from test/services/rocketmq.sh): a
// duplicate sent under the same key runs the handler once and is acknowledged, poison and
// exhausted messages reach the dead-letter topic with their reason, a retry comes back after its
// delay rather than the invisible duration. Each test has topics and a consumer group of its own.

import type { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  createTopics,
  drain,
  ROCKETMQ_GRPC_PORT,
  send,
  startProducer,
  startSimpleConsumer,
  uniqueName,
  waitFor,
} from '../../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import type { DeliveryResult, MessageContext } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeRocketMQ, type RocketMQConsumerStats } from './rocketmq-consumer.js'
import { DeadLetterProperties } from './rocketmq-dead-letter.js'

/** Short, so that "not redelivered" is seen within a test: the proxy's minimum for a receive. */
const INVISIBLE_MS = 10_000
/**
 * Long enough for an unacknowledged message to be back: RocketMQ 5.3.3 redelivers it a few seconds
 * after its invisible duration ran out (its revive scan), not on the dot.
 */
const PAST_INVISIBLE_MS = 16_000

if (await requireService('RocketMQ', ROCKETMQ_GRPC_PORT)) {
  describe.concurrent('consumeRocketMQ on RocketMQ 5', { timeout: 35_000 }, () => {
    const cases = ['dup', 'poison', 'attempts', 'retry'] as const
    const topics = Object.fromEntries(cases.map((c) => [c, uniqueName(`idem_rmq_${c}`)])) as Record<
      (typeof cases)[number],
      string
    >
    const dead = (topic: string) => `${topic}_dead`
    let producer: Producer
    const clients: SimpleConsumer[] = []
    const handles: ConsumerHandle<unknown, unknown, RocketMQConsumerStats>[] = []

    beforeAll(async () => {
      await createTopics(...Object.values(topics).flatMap((t) => [t, dead(t)]))
      producer = await startProducer()
    }, 60_000)
    afterAll(async () => {
      for (const h of handles) await h.close()
      for (const c of clients) await c.shutdown().catch(() => {})
      await producer?.shutdown()
    })

    /** Consume `topic` with a new group; records every received and settled delivery. */
    async function consume(
      topic: string,
      handler: (payload: unknown, ctx: MessageContext<unknown>) => unknown,
      options: { maxAttempts?: number; backoff?: (attempt: number) => number; invisibleDuration?: number } = {},
    ) {
      const client = await startSimpleConsumer({ group: uniqueName('g'), subscriptions: { [topic]: '*' } })
      clients.push(client)
      const received: { key: string; deliveryCount: number; at: number }[] = []
      const settled: DeliveryResult[] = []
      const brokerErrors: unknown[] = []
      const handle = await consumeRocketMQ({
        client,
        invisibleDuration: INVISIBLE_MS,
        deadLetterTopic: dead(topic),
        deadLetterProducer: producer,
        idem: new Idempotency({ store: new MemoryStore() }),
        handler,
        ...options,
        on: {
          received: (r) => received.push({ ...r, at: Date.now() }),
          settled: (r) => settled.push(r),
          broker_error: (e) => brokerErrors.push(e),
        },
      })
      handles.push(handle)
      return { handle, received, settled, brokerErrors }
    }

    it('runs the handler once for a message sent twice under one key, acks both, redelivers neither', async () => {
      const runs: string[] = []
      const c = await consume(topics.dup, (_p, ctx) => void runs.push(ctx.key))
      for (let i = 0; i < 2; i++)
        await send(producer, topics.dup, { order: 1 }, { properties: { 'idem-key': 'dup-1' } })
      await send(producer, topics.dup, { order: 2 }, { keys: ['dup-2'] })
      await waitFor('three deliveries settled', () => c.settled.length === 3)
      expect(c.settled.map((r) => `${r.key}:${r.outcome}`).sort()).toEqual([
        'dup-1:executed',
        'dup-1:replayed',
        'dup-2:executed',
      ])
      // Past the invisible duration: an unacknowledged message would be back by now.
      await new Promise((resolve) => setTimeout(resolve, PAST_INVISIBLE_MS))
      expect(c.received).toHaveLength(3)
      expect(runs.sort()).toEqual(['dup-1', 'dup-2'])
      expect(c.brokerErrors).toEqual([])
    })

    it('dead-letters poison at once, with the reason readable on the dead-letter topic', async () => {
      let runs = 0
      const c = await consume(topics.poison, () => void runs++)
      const undecodable = await send(producer, topics.poison, 'not json', { properties: { 'idem-key': 'poison-1' } })
      const tooLong = await send(producer, topics.poison, { ok: true }, { properties: { 'idem-key': 'k'.repeat(300) } })
      const copies = await drain(dead(topics.poison), { count: 2 })
      const byId = new Map(copies.map((m) => [m.properties.get(DeadLetterProperties.MESSAGE_ID), m]))
      const a = byId.get(undecodable)
      expect(a?.properties.get(DeadLetterProperties.REASON)).toMatch(/payload could not be decoded/)
      expect(a?.properties.get(DeadLetterProperties.KEY)).toBe('poison-1')
      expect(a?.properties.get(DeadLetterProperties.TOPIC)).toBe(topics.poison)
      expect(a?.body.toString()).toBe('not json')
      const b = byId.get(tooLong)
      expect(b?.properties.get(DeadLetterProperties.REASON)).toMatch(/no usable idempotency key/)
      expect(b?.properties.get(DeadLetterProperties.KEY)).toBe(tooLong)
      // Acknowledged once copied: not delivered again, never handled.
      await new Promise((resolve) => setTimeout(resolve, PAST_INVISIBLE_MS))
      expect(c.handle.stats.rejected).toBe(2)
      expect(runs).toBe(0)
      expect(c.received).toEqual([])
    })

    it('dead-letters a message failing maxAttempts deliveries, counted by the broker', async () => {
      const c = await consume(
        topics.attempts,
        () => {
          throw new Error('card declined')
        },
        { maxAttempts: 3, backoff: () => 300 },
      )
      const id = await send(producer, topics.attempts, { order: 3 }, { properties: { 'idem-key': 'fail-1' } })
      await waitFor('the dead letter', () => c.settled.some((r) => r.outcome === 'dead_lettered')).catch((e) => {
        throw new Error(
          `${e.message}: ${JSON.stringify({ received: c.received, settled: c.settled.map((r) => [r.outcome, r.reason]), brokerErrors: c.brokerErrors.map(String) })}`,
        )
      })
      expect(c.received.map((r) => r.deliveryCount)).toEqual([1, 2, 3])
      expect(c.settled.map((r) => r.outcome)).toEqual(['retried', 'retried', 'dead_lettered'])
      const [copy, ...more] = await drain(dead(topics.attempts), { count: 1, settleMs: 1000 })
      expect(more).toEqual([])
      expect(copy?.properties.get(DeadLetterProperties.REASON)).toMatch(/card declined/)
      expect(copy?.properties.get(DeadLetterProperties.DELIVERY_COUNT)).toBe('3')
      expect(copy?.properties.get(DeadLetterProperties.MESSAGE_ID)).toBe(id)
      expect(copy?.properties.get('idem-key')).toBe('fail-1')
      expect(JSON.parse(copy?.body.toString() ?? '')).toEqual({ order: 3 })
      expect(c.received).toHaveLength(3)
    })

    it('retries a failed handler after its backoff delay, not after the invisible duration', async () => {
      let runs = 0
      const c = await consume(
        topics.retry,
        () => {
          if (++runs === 1) throw new Error('not yet')
        },
        // An invisible duration far longer than the delay and than RocketMQ's lateness in
        // bringing a message back: a redelivery by timeout would come after 30 s.
        { backoff: () => 2000, invisibleDuration: 30_000 },
      )
      await send(producer, topics.retry, { order: 4 }, { properties: { 'idem-key': 'retry-1' } })
      await waitFor('the second attempt settled', () => c.settled.length === 2)
      expect(c.settled.map((r) => r.outcome)).toEqual(['retried', 'executed'])
      expect(c.settled[0]?.delayMs).toBe(2000)
      const [first, second] = c.received
      expect(second?.deliveryCount).toBe(2)
      const gap = (second?.at ?? 0) - (first?.at ?? 0)
      // No sooner than the delay; RocketMQ 5.3.3 brings a message back some seconds late (its
      // revive scan), yet well before the invisible duration would have.
      expect(gap).toBeGreaterThanOrEqual(2000)
      expect(gap).toBeLessThan(20_000)
      expect(runs).toBe(2)
    })
  })
}
