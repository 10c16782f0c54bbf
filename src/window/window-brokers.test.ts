// The consumer core's `window` option through real brokers: MQTT (Mosquitto, QoS 1 repeats of a
// device) and NATS JetStream (copies published past the stream's own duplicate window).

import { setTimeout as sleep } from 'node:timers/promises'
import type { NatsConnection } from 'nats'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import { cleanUp, isolatedPrefix, MOSQUITTO_PORT, until } from '../../test/support/brokers/mqtt/mqtt.test-helper.js'
import { count, startConsumer } from '../../test/support/brokers/mqtt/mqtt-consumer.test-helper.js'
import { connectNats, createTopology, NATS_PORT, waitFor } from '../../test/support/brokers/nats/nats.test-helper.js'
import { consumeJetStream } from '../brokers/nats/jetstream-consumer.js'
import { jetStreamProducer } from '../brokers/nats/jetstream-producer.js'
import { IdempotentConsumer } from '../consumer/consumer.js'
import type { DeliveryResult } from '../consumer/types.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { memoryWindow } from './memory-window.js'
import { DedupWindow } from './window.js'

const WINDOW_REASON = 'window: a repeat within the dedup window'

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('a dedup window on consumeMqtt (Mosquitto)', () => {
    const prefix = isolatedPrefix('window')
    afterAll(cleanUp)

    it('drops a repeat within the window before the claim, and handles it again once the window passed', async () => {
      const effects = new Map<string, number>()
      const c = await startConsumer(prefix, 'telemetry', {
        window: new DedupWindow({ store: memoryWindow(), window: 400 }),
        handler: (_reading, ctx) => void count(effects, ctx.key),
        // Records short-lived: past the window, a copy is a new event here.
        ttl: 50,
      })
      await c.publish('r1')
      await c.publish('r1')
      await c.publish('r2')
      await until(() => c.settled.length === 3, 15_000, 'three settled deliveries')
      expect(c.settled.map((s) => `${s.key}:${s.outcome}:${s.reason ?? ''}`)).toEqual([
        'r1:executed:',
        `r1:replayed:${WINDOW_REASON}`,
        'r2:executed:',
      ])
      await sleep(500)
      await c.publish('r1')
      await until(() => c.settled.length === 4, 15_000, 'the copy past the window')
      expect(c.settled[3]).toMatchObject({ key: 'r1', outcome: 'executed' })
      expect(Object.fromEntries(effects)).toEqual({ r1: 2, r2: 1 })
      await c.close()
    })
  })
}

if (await requireService('NATS JetStream', NATS_PORT)) {
  describe('a dedup window on consumeJetStream (NATS)', () => {
    let nc: NatsConnection | undefined
    afterAll(async () => {
      await nc?.close()
    })

    it('drops copies past the stream duplicate window but within its own, in batches', async () => {
      nc = await connectNats()
      // The stream forgets ids after 100 ms; the dedup window keeps them for a minute.
      const t = await createTopology(nc, 'idem_window', { duplicateWindowMs: 100 })
      try {
        const runs: string[] = []
        const results: DeliveryResult[] = []
        const store = new MemoryStore()
        let claims = 0
        const beginMany = store.beginMany.bind(store)
        store.beginMany = (...args) => {
          claims += args[0].length
          return beginMany(...args)
        }
        const begin = store.begin.bind(store)
        store.begin = (...args) => {
          claims++
          return begin(...args)
        }
        const consumer = new IdempotentConsumer<{ n: number }>({
          idem: new Idempotency({ store }),
          window: new DedupWindow({ store: memoryWindow(), window: '1m' }),
          handler: (_payload, ctx) => void runs.push(ctx.key),
          on: { settled: (result) => results.push(result) },
        })
        const producer = jetStreamProducer({ client: nc.jetstream(), subject: t.subject })
        for (const id of ['e1', 'e2', 'e3']) await producer.send({ id, payload: { n: 1 } })
        await sleep(250)
        // Stored again by the stream (past its duplicate window): the dedup window must catch them.
        for (const id of ['e1', 'e2', 'e4']) await producer.send({ id, payload: { n: 1 } })
        expect(await t.storedMessages()).toBe(6)
        const sub = await consumeJetStream<{ n: number }>({
          client: nc,
          stream: t.stream,
          durable: t.durable,
          deadLetterSubject: t.deadLetterSubject,
          fetchExpires: '2s',
          consumer,
        })
        try {
          await waitFor('six settled deliveries', () => results.length === 6)
          await waitFor('everything acknowledged', async () => {
            const info = await t.consumerInfo()
            return info.num_pending === 0 && info.num_ack_pending === 0
          })
        } finally {
          await sub.close()
        }
        expect(runs.sort()).toEqual(['e1', 'e2', 'e3', 'e4'])
        expect(
          results
            .filter((r) => r.reason === WINDOW_REASON)
            .map((r) => r.key)
            .sort(),
        ).toEqual(['e1', 'e2'])
        expect(claims).toBe(4)
      } finally {
        await t.remove()
      }
    })
  })
}
