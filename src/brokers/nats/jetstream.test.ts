import { setTimeout as sleep } from 'node:timers/promises'
import { Idempotency, MemoryStore } from 'idem'
import { type DeliveryResult, IdempotentConsumer, type MessageContext } from 'idem/consumer'
import type { NatsConnection } from 'nats'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  connectNats,
  createTopology,
  NATS_PORT,
  startProxy,
  type Topology,
  waitFor,
} from '../../../test/support/brokers/nats/nats.test-helper.js'
import { type ConsumeJetStreamOptions, consumeJetStream } from './jetstream-consumer.js'
import { DeadLetterHeaders } from './jetstream-dead-letter.js'
import { jetStreamProducer } from './jetstream-producer.js'

type Payload = { n: number }

/** What the handler saw and did, by message key. */
class Journal {
  readonly deliveries = new Map<string, number[]>()
  readonly effects = new Map<string, number>()
  readonly results: DeliveryResult[] = []
  seen(ctx: MessageContext): void {
    this.deliveries.set(ctx.key, [...(this.deliveries.get(ctx.key) ?? []), ctx.delivery.deliveryCount])
  }
  effect(key: string): void {
    this.effects.set(key, (this.effects.get(key) ?? 0) + 1)
  }
  outcomes(key: string): string[] {
    return this.results.filter((r) => r.key === key).map((r) => r.outcome)
  }
}

if (await requireService('NATS JetStream', NATS_PORT)) {
  describe('JetStream producer and idempotent consumer on a real NATS server', () => {
    let nc: NatsConnection
    const topologies: Topology[] = []
    const subscriptions: { close(): Promise<void> }[] = []

    beforeAll(async () => {
      nc = await connectNats()
    })
    afterAll(async () => {
      for (const sub of subscriptions) await sub.close()
      for (const t of topologies) await t.remove()
      await nc.close()
    })

    async function topology(prefix: string, options: Parameters<typeof createTopology>[2] = {}): Promise<Topology> {
      const t = await createTopology(nc, `idem_js_${prefix}`, options)
      topologies.push(t)
      return t
    }

    /** consumeJetStream on `t` with an in-memory Idem store, recording every settled delivery. */
    async function consume(
      t: Topology,
      journal: Journal,
      handler: (payload: Payload, ctx: MessageContext) => unknown,
      options: Partial<ConsumeJetStreamOptions<Payload>> & {
        lease?: string
        maxAttempts?: number
        shutdownTimeout?: string
        idem?: Idempotency
      } = {},
    ) {
      const { lease, maxAttempts, shutdownTimeout, idem: given, ...rest } = options
      const idem = given ?? new Idempotency({ store: new MemoryStore(), lease: lease ?? '30s' })
      const consumer = new IdempotentConsumer<Payload>({
        idem,
        handler,
        concurrency: 8,
        maxAttempts: maxAttempts ?? 5,
        backoff: () => 100,
        ...(shutdownTimeout === undefined ? {} : { shutdownTimeout }),
      })
      consumer.on('settled', (r) => journal.results.push(r))
      const sub = await consumeJetStream<Payload>({
        client: nc,
        stream: t.stream,
        durable: t.durable,
        deadLetterSubject: t.deadLetterSubject,
        fetchExpires: '2s',
        ...rest,
        consumer,
      })
      subscriptions.push(sub)
      return { sub, consumer }
    }

    async function drained(t: Topology): Promise<boolean> {
      const info = await t.consumerInfo()
      return info.num_pending === 0 && info.num_ack_pending === 0
    }

    it('stores a message published twice under one id once, the second PubAck reporting the duplicate', async () => {
      const t = await topology('dup')
      const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
      const first = await producer.send({ id: 'pay-1', payload: { n: 1 } })
      const second = await producer.send({ id: 'pay-1', payload: { n: 1 } })
      expect([first.duplicate, second.duplicate]).toEqual([false, true])
      expect(second.seq).toBe(first.seq)
      const generated = await producer.send({ payload: { n: 2 } })
      expect(generated.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(await t.storedMessages()).toBe(2)
    })

    it('runs the handler once for a copy published again after the stream’s duplicate window', async () => {
      const t = await topology('late', { duplicateWindowMs: 500 })
      const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
      await producer.publish({ id: 'pay-late', payload: { n: 1 } })
      await sleep(1000)
      const again = await producer.send({ id: 'pay-late', payload: { n: 1 } })
      // The window has passed: JetStream stores the copy, and only Idem's record recognises it.
      expect(again.duplicate).toBe(false)
      expect(await t.storedMessages()).toBe(2)

      const journal = new Journal()
      await consume(t, journal, (_p, ctx) => {
        journal.seen(ctx)
        journal.effect(ctx.key)
      })
      await waitFor('both copies settled', () => journal.results.length === 2)
      expect(journal.effects.get('pay-late')).toBe(1)
      expect(journal.outcomes('pay-late')).toEqual(['executed', 'replayed'])
      await waitFor('nothing left unacknowledged', () => drained(t))
    })

    it('processes every message once when the consumer’s connection is cut mid-stream, three times', async () => {
      const t = await topology('drop', { ackWaitMs: 2000 })
      const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
      const keys = Array.from({ length: 60 }, (_, i) => `drop-${i}`)
      await Promise.all(keys.map((id, i) => producer.publish({ id, payload: { n: i } })))

      const proxy = await startProxy()
      const conn = await connectNats({
        servers: `127.0.0.1:${proxy.port}`,
        reconnectTimeWait: 100,
        maxReconnectAttempts: -1,
      })
      let reconnects = 0
      void (async () => {
        for await (const s of conn.status()) if (s.type === 'reconnect') reconnects++
      })()
      try {
        const journal = new Journal()
        await consume(
          t,
          journal,
          async (_p, ctx) => {
            journal.seen(ctx)
            await sleep(20)
            journal.effect(ctx.key)
          },
          { client: conn },
        )
        // Cut while pulls are outstanding and handlers are running: messages in transit are lost
        // (JetStream redelivers them after ack_wait), acks are either queued for the next connection or lost.
        for (const [cut, handled] of [15, 30, 45].entries()) {
          await waitFor(`${handled} messages handled`, () => journal.effects.size >= handled)
          // Messages fetched before the last cut may be handled while the client is still
          // reconnecting: cut as soon as the client has reconnected (its status said so: a cut
          // during its handshake would be one failed attempt, not a reconnection to count).
          await waitFor('a live connection to cut', () => reconnects >= cut && proxy.drop() > 0)
        }
        await waitFor('every message handled', () => journal.effects.size === keys.length, 30_000)
        await waitFor('nothing left unacknowledged', () => drained(t), 30_000)
        // The status event comes from its own loop: wait for it rather than race it.
        await waitFor('the third reconnection', () => reconnects >= 3)
        expect([...journal.effects.values()].filter((n) => n !== 1)).toEqual([])
        expect(journal.results.filter((r) => r.outcome === 'dead_lettered')).toEqual([])
      } finally {
        await subscriptions.pop()?.close()
        await conn.close()
        await proxy.close()
      }
    })

    it('dead-letters a message that keeps failing after maxAttempts, keeping the reason', async () => {
      const t = await topology('poison')
      await jetStreamProducer({ client: nc.jetstream(), subject: t.subject }).publish({
        id: 'pay-bad',
        payload: { n: 9 },
      })
      const journal = new Journal()
      await consume(
        t,
        journal,
        (_p, ctx) => {
          journal.seen(ctx)
          throw new Error('card declined')
        },
        { maxAttempts: 3 },
      )
      await waitFor('the dead-letter copy', async () => (await t.deadLetters()).length === 1)
      const [copy] = await t.deadLetters()
      expect(copy?.data).toBe('{"n":9}')
      expect(copy?.headers?.get(DeadLetterHeaders.REASON)).toMatch(/card declined/)
      expect(copy?.headers?.get(DeadLetterHeaders.DELIVERY_COUNT)).toBe('3')
      expect(copy?.headers?.get(DeadLetterHeaders.KEY)).toBe('pay-bad')
      expect(journal.deliveries.get('pay-bad')).toEqual([1, 2, 3])
      expect(journal.outcomes('pay-bad')).toEqual(['retried', 'retried', 'dead_lettered'])
      // Terminated: JetStream does not deliver it again.
      await waitFor('nothing left unacknowledged', () => drained(t))
      await sleep(500)
      expect(journal.deliveries.get('pay-bad')).toHaveLength(3)
    })

    it('dead-letters a payload that is not JSON without running the handler', async () => {
      const t = await topology('undecodable')
      await nc.jetstream().publish(t.subject, new TextEncoder().encode('not json'), { msgID: 'raw-1' })
      const journal = new Journal()
      await consume(t, journal, (_p, ctx) => journal.seen(ctx))
      await waitFor('the dead-letter copy', async () => (await t.deadLetters()).length === 1)
      const [copy] = await t.deadLetters()
      expect(copy?.headers?.get(DeadLetterHeaders.REASON)).toMatch(/could not be decoded/)
      expect(copy?.data).toBe('not json')
      await waitFor('nothing left unacknowledged', () => drained(t))
      expect(journal.deliveries.size).toBe(0)
    })

    it('processes once a handler that outlasts both the Idem lease and the consumer’s ack_wait', async () => {
      const t = await topology('long', { ackWaitMs: 1000 })
      await jetStreamProducer({ client: nc.jetstream(), subject: t.subject }).publish({
        id: 'slow-1',
        payload: { n: 1 },
      })
      const journal = new Journal()
      await consume(
        t,
        journal,
        async (_p, ctx) => {
          journal.seen(ctx)
          await sleep(3500)
          journal.effect(ctx.key)
        },
        { lease: '1s' },
      )
      await waitFor('the slow message settled', () => journal.results.length > 0, 20_000)
      await waitFor('nothing left unacknowledged', () => drained(t))
      expect(journal.outcomes('slow-1')).toEqual(['executed'])
      // working() kept JetStream from redelivering it; the renewed lease kept Idem's claim.
      expect(journal.deliveries.get('slow-1')).toEqual([1])
      expect(journal.effects.get('slow-1')).toBe(1)
    })

    it('retries only the message that failed in a batch, never its finished neighbours', async () => {
      const t = await topology('batch')
      const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
      const keys = ['b-1', 'b-2', 'b-3', 'b-4', 'b-5']
      for (const [i, id] of keys.entries()) await producer.publish({ id, payload: { n: i } })
      const journal = new Journal()
      let failed = false
      const { consumer } = await consume(t, journal, (_p, ctx) => {
        journal.seen(ctx)
        if (ctx.key === 'b-3' && !failed) {
          failed = true
          throw new Error('transient')
        }
        journal.effect(ctx.key)
      })
      const batches: number[] = []
      const handleBatch = consumer.handleBatch.bind(consumer)
      consumer.handleBatch = (deliveries) => {
        batches.push(deliveries.length)
        return handleBatch(deliveries)
      }
      await waitFor('every message handled', () => journal.effects.size === keys.length)
      await waitFor('nothing left unacknowledged', () => drained(t))
      expect(Object.fromEntries(journal.deliveries)).toEqual({
        'b-1': [1],
        'b-2': [1],
        'b-3': [1, 2],
        'b-4': [1],
        'b-5': [1],
      })
      expect([...journal.effects.values()]).toEqual([1, 1, 1, 1, 1])
      expect(journal.outcomes('b-3')).toEqual(['retried', 'executed'])
      expect(Math.max(...batches)).toBeGreaterThan(1)
    })

    it('hands an unfinished message back on close, and the next subscription processes it once', async () => {
      const t = await topology('close')
      await jetStreamProducer({ client: nc.jetstream(), subject: t.subject }).publish({
        id: 'half-done',
        payload: { n: 1 },
      })
      const idem = new Idempotency({ store: new MemoryStore() })
      const journal = new Journal()
      const first = await consume(
        t,
        journal,
        async (_p, ctx) => {
          journal.seen(ctx)
          // Still at work when close() gives up waiting: the abort ends it before its effect.
          await sleep(10_000, undefined, { signal: ctx.signal })
          journal.effect(ctx.key)
        },
        { idem, shutdownTimeout: '200ms' },
      )
      await waitFor('the handler started', () => journal.deliveries.has('half-done'))
      await first.sub.close()
      expect(journal.outcomes('half-done')).toEqual(['retried'])
      expect(journal.effects.size).toBe(0)

      await consume(
        t,
        journal,
        (_p, ctx) => {
          journal.seen(ctx)
          journal.effect(ctx.key)
        },
        { idem },
      )
      await waitFor('the message handled', () => journal.effects.size === 1)
      await waitFor('nothing left unacknowledged', () => drained(t))
      // Two deliveries. (Their counts may both read 1: NATS 2.9 restarts the count of a message it
      // sent to the closed subscription's still-pending pull request, which nobody received.)
      expect(journal.deliveries.get('half-done')).toHaveLength(2)
      expect(journal.effects.get('half-done')).toBe(1)
    })
  })
}
