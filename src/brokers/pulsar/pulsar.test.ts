// consumePulsar and pulsarProducer against the Pulsar standalone of test/services/pulsar.sh, each
// test on topics and subscriptions of its own.

import { setTimeout as sleep } from 'node:timers/promises'
import { Idempotency, MemoryStore } from 'idem'
import type { DeliveryResult, MessageContext } from 'idem/consumer'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  deleteTopics,
  holdMessages,
  PULSAR_URL,
  PULSAR_WEB_PORT,
  publishRaw,
  readTopic,
  subscriptionStats,
  uniqueTopic,
  waitFor,
  waitForDrained,
} from '../../../test/support/brokers/pulsar/pulsar.test-helper.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import { type ConsumePulsarOptions, consumePulsar } from './pulsar-consumer.js'
import { DeadLetterProperties } from './pulsar-dead-letter.js'
import { KEY_PROPERTY } from './pulsar-keys.js'
import { pulsarProducer } from './pulsar-producer.js'
import { PulsarConnectError } from './pulsar-socket.js'

type Payload = { n: number }

if (await requireService('Pulsar', PULSAR_WEB_PORT)) {
  describe('Pulsar producer and idempotent consumer on a real Pulsar standalone', () => {
    const topics: string[] = []
    const handles: { close(): Promise<void> }[] = []

    afterAll(async () => {
      for (const handle of handles) await handle.close()
      await deleteTopics(topics)
    })

    function topic(prefix: string): { topic: string; deadLetterTopic: string; subscription: string } {
      const t = uniqueTopic(prefix)
      topics.push(t, `${t}-dead`)
      return { topic: t, deadLetterTopic: `${t}-dead`, subscription: 'billing' }
    }

    /** consumePulsar with an in-memory store, recording every settled delivery. */
    async function consume(
      where: { topic: string; deadLetterTopic: string; subscription: string },
      handler: (payload: Payload, ctx: MessageContext<Payload>) => unknown,
      options: Partial<ConsumePulsarOptions<Payload>> & { maxAttempts?: number; concurrency?: number } = {},
    ) {
      const results: DeliveryResult[] = []
      const { maxAttempts, concurrency, ...rest } = options
      const handle = await consumePulsar<Payload>({
        url: PULSAR_URL,
        ...where,
        retryDelay: '100ms',
        idem: new Idempotency({ store: new MemoryStore(), lease: '30s' }),
        handler,
        maxAttempts: maxAttempts ?? 5,
        concurrency: concurrency ?? 4,
        backoff: () => 100,
        on: { settled: (r) => results.push(r) },
        ...rest,
      } as ConsumePulsarOptions<Payload>)
      handles.push(handle)
      return { handle, results }
    }

    it('runs the handler once for a message published twice under one id, and acks both', async () => {
      const where = topic('dup')
      const producer = pulsarProducer({ url: PULSAR_URL, topic: where.topic })
      const first = await producer.send({ id: 'order-1', payload: { n: 1 } })
      const second = await producer.send({ id: 'order-1', payload: { n: 1 } })
      await producer.send({ id: 'order-2', payload: { n: 2 } })
      await producer.close()
      // Pulsar stored both copies: only the consumer can tell them apart.
      expect(first.messageId).not.toBe(second.messageId)
      const runs: string[] = []
      const { handle, results } = await consume(where, (payload, ctx) => {
        runs.push(`${ctx.key}:${payload.n}`)
      })
      await waitFor('three settled deliveries', () => results.length === 3)
      expect(runs.sort()).toEqual(['order-1:1', 'order-2:2'])
      expect(
        results
          .filter((r) => r.key === 'order-1')
          .map((r) => r.outcome)
          .sort(),
      ).toEqual(['executed', 'replayed'])
      await waitForDrained(where.topic, where.subscription)
      await handle.close()
    })

    it('retries a failing handler with negative acks, counting deliveries, then runs it once', async () => {
      const where = topic('retry')
      await pulsarProducer({ url: PULSAR_URL, topic: where.topic }).publish({ id: 'flaky', payload: { n: 1 } })
      const counts: number[] = []
      const { handle, results } = await consume(where, (_payload, ctx) => {
        counts.push(ctx.delivery.deliveryCount)
        if (counts.length < 3) throw new Error('not yet')
      })
      await waitFor('the third delivery to succeed', () => results.some((r) => r.outcome === 'executed'))
      expect(counts).toEqual([1, 2, 3])
      expect(results.map((r) => r.outcome)).toEqual(['retried', 'retried', 'executed'])
      await waitForDrained(where.topic, where.subscription)
      await handle.close()
    })

    it('dead-letters a message whose handler always fails after maxAttempts, with the reason on the copy', async () => {
      const where = topic('poison')
      await pulsarProducer({ url: PULSAR_URL, topic: where.topic }).publish({
        id: 'poison-1',
        payload: { n: 7 },
        headers: { tenant: 'acme' },
      })
      let runs = 0
      const { handle, results } = await consume(
        where,
        () => {
          runs++
          throw new Error('card declined')
        },
        { maxAttempts: 3 },
      )
      await waitFor('the message to be dead-lettered', () => results.some((r) => r.outcome === 'dead_lettered'))
      expect(runs).toBe(3)
      const [copy] = await readTopic(where.deadLetterTopic, 1)
      expect(JSON.parse(Buffer.from(copy?.payload ?? '', 'base64').toString())).toEqual({ n: 7 })
      expect(copy?.properties?.[DeadLetterProperties.REASON]).toContain('card declined')
      expect(copy?.properties).toMatchObject({
        [DeadLetterProperties.KEY]: 'poison-1',
        [DeadLetterProperties.TOPIC]: where.topic,
        [DeadLetterProperties.SUBSCRIPTION]: where.subscription,
        [DeadLetterProperties.DELIVERY_COUNT]: '3',
        tenant: 'acme',
      })
      await waitForDrained(where.topic, where.subscription)
      await handle.close()
    })

    it('dead-letters an undecodable payload without running the handler, keyed by its message id', async () => {
      const where = topic('undecodable')
      const [reply] = await publishRaw(where.topic, [{ payload: Buffer.from([0x7b, 0xff, 0x7d]) }])
      const good = await publishRaw(where.topic, [{ payload: '{"n":3}', properties: { [KEY_PROPERTY]: 'fine' } }])
      expect(good).toHaveLength(1)
      const runs: string[] = []
      const { handle } = await consume(where, (_payload, ctx) => {
        runs.push(ctx.key)
      })
      const [copy] = await readTopic(where.deadLetterTopic, 1)
      expect(copy?.properties?.[DeadLetterProperties.REASON]).toBe(
        'the payload could not be decoded: the payload is not valid UTF-8',
      )
      expect(copy?.properties?.[DeadLetterProperties.KEY]).toBe(`pulsar:${where.topic}:${reply?.messageId}`)
      expect(Buffer.from(copy?.payload ?? '', 'base64')).toEqual(Buffer.from([0x7b, 0xff, 0x7d]))
      await waitForDrained(where.topic, where.subscription)
      expect(runs).toEqual(['fine'])
      expect(handle.stats.rejected).toBe(1)
      await handle.close()
    })

    it('keys a message without the property by its message id, and by the property when asked only', async () => {
      const where = topic('msgid')
      const [reply] = await publishRaw(where.topic, [{ payload: '{"n":1}' }])
      const keys: string[] = []
      const { handle } = await consume(where, (_payload, ctx) => {
        keys.push(ctx.key)
      })
      await waitFor('one run', () => keys.length === 1)
      expect(keys).toEqual([`pulsar:${where.topic}:${reply?.messageId}`])
      await handle.close()

      const strict = topic('strict')
      await publishRaw(strict.topic, [{ payload: '{"n":1}' }])
      const { handle: strictHandle } = await consume(strict, () => {}, { key: 'property' })
      const [copy] = await readTopic(strict.deadLetterTopic, 1)
      expect(copy?.properties?.[DeadLetterProperties.REASON]).toBe(
        `the message has no idempotency key (property ${KEY_PROPERTY})`,
      )
      await strictHandle.close()
    })

    it('lets close() finish the handler in flight and ack it, and leaves the rest with the broker', async () => {
      const where = topic('close')
      const producer = pulsarProducer({ url: PULSAR_URL, topic: where.topic })
      for (const n of [1, 2, 3]) await producer.publish({ id: `c-${n}`, payload: { n } })
      await producer.close()
      let entered!: () => void
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve
      })
      const done: string[] = []
      const { handle } = await consume(
        where,
        async (_payload, ctx) => {
          entered()
          await sleep(300)
          done.push(ctx.key)
        },
        { concurrency: 1 },
      )
      await inHandler
      await handle.close()
      expect(done).toEqual(['c-1'])
      await waitFor(
        'the socket to be gone',
        async () => (await subscriptionStats(where.topic, where.subscription))?.consumers === 0,
      )
      // c-1 acknowledged before the socket closed; c-2 and c-3 still wait for a consumer.
      expect((await subscriptionStats(where.topic, where.subscription))?.msgBacklog).toBe(2)
      const { results } = await consume(where, () => {})
      await waitFor('the other two', () => results.length === 2)
      expect(results.map((r) => r.key).sort()).toEqual(['c-2', 'c-3'])
    })

    it('asks the broker for no more messages than the core can take', async () => {
      const where = topic('permits')
      const producer = pulsarProducer({ url: PULSAR_URL, topic: where.topic })
      for (let n = 0; n < 10; n++) await producer.publish({ id: `p-${n}`, payload: { n } })
      await producer.close()
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      let running = 0
      let peak = 0
      const { handle, results } = await consume(
        where,
        async () => {
          running++
          peak = Math.max(peak, running)
          await gate
          running--
        },
        { concurrency: 2 },
      )
      await waitFor('two handlers running', () => running === 2)
      // Another consumer of the subscription gets what this one did not take: all but the two in
      // handlers and the two the broker-side client prefetched for this one (its receiverQueueSize).
      const other = await holdMessages(where.topic, where.subscription)
      await waitFor('the other consumer to get six', () => other.received() >= 6)
      await sleep(300)
      expect(other.received()).toBe(6)
      expect(handle.stats.permits).toBe(2)
      expect(await handle.lag?.()).toBe(10)
      other.close()
      release()
      await waitFor('all ten', () => results.length === 10)
      expect(peak).toBe(2)
      await waitForDrained(where.topic, where.subscription)
      expect(await handle.lag?.()).toBe(0)
      await handle.close()
    })

    it('confirms each send with the stored message id, and rejects one the broker refuses', async () => {
      const where = topic('producer')
      const producer = pulsarProducer({ url: PULSAR_URL, topic: where.topic })
      const receipt = await producer.send({ payload: { n: 1 }, headers: { trace: 't1' } })
      expect(receipt.topic).toBe(where.topic)
      expect(receipt.messageId).toMatch(/^[A-Za-z0-9+/=]+$/)
      const [stored] = await readTopic(where.topic, 1)
      expect(stored?.messageId).toBe(receipt.messageId)
      expect(stored?.properties).toEqual({ trace: 't1', [KEY_PROPERTY]: receipt.id })
      // A namespace that does not exist: the broker refuses the producer.
      const refused = producer.send({ id: 'x-1', payload: {}, destination: 'persistent://public/nosuch/t' })
      await expect(refused).rejects.toBeInstanceOf(PublishNotConfirmedError)
      await expect(refused).rejects.toMatchObject({
        messageId: 'x-1',
        message: expect.stringContaining('Namespace not found'),
      })
      await producer.close()
      await expect(producer.send({ id: 'late', payload: {} })).rejects.toThrow('the Pulsar producer is closed')
    })

    it('rejects a subscription the broker refuses, with its reason', async () => {
      const attempt = consumePulsar({
        url: PULSAR_URL,
        topic: 'persistent://public/nosuch/t',
        subscription: 's',
        deadLetterTopic: false,
        idem: new Idempotency({ store: new MemoryStore() }),
        handler: () => {},
      })
      await expect(attempt).rejects.toBeInstanceOf(PulsarConnectError)
      await expect(attempt).rejects.toMatchObject({
        status: 404,
        message: expect.stringContaining('Namespace not found'),
      })
    })
  })
}
