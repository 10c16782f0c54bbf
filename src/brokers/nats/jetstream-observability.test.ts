import { Idempotency, MemoryStore } from 'idem'
import type { ConsumerHandle, DeliveryResult } from 'idem/consumer'
import { AckPolicy, type NatsConnection, headers as natsHeaderSet } from 'nats'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { fakeMsg } from '../../../test/support/brokers/nats/jetstream-fakes.test-helper.js'
import {
  connectNats,
  createTopology,
  NATS_PORT,
  type Topology,
} from '../../../test/support/brokers/nats/nats.test-helper.js'
import { until } from '../../../test/support/until.test-helper.js'
import { consumeJetStream } from './jetstream-consumer.js'
import { type DeliverySettings, toDelivery } from './jetstream-delivery.js'
import { jetStreamProducer } from './jetstream-producer.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

function lagOf(handle: Pick<ConsumerHandle, 'lag'>): Promise<number | undefined> {
  if (handle.lag === undefined) throw new Error('the JetStream handle has no lag()')
  return handle.lag()
}

describe('JetStream deliveries: headers()', () => {
  const settings: DeliverySettings<unknown> = {
    key: 'msgIdOrSequence',
    streamEpoch: 0,
    decode: () => ({}),
    extendEveryMs: 1000,
    doubleAck: false,
    deadLetter: async () => {},
  }

  it('builds the record once, on the first call', () => {
    const msg = fakeMsg({ headers: { 'Nats-Msg-Id': 'm-1', traceparent: TRACEPARENT } })
    let reads = 0
    const counted = new Proxy(msg, {
      get(target, prop, receiver) {
        if (prop === 'headers') reads++
        return Reflect.get(target, prop, receiver)
      },
    })
    const translated = toDelivery(counted, settings)
    if (!translated.ok) throw new Error(translated.reason)
    const readsForKey = reads
    const first = translated.delivery.headers?.()
    expect(first).toEqual({ 'Nats-Msg-Id': 'm-1', traceparent: TRACEPARENT })
    expect(translated.delivery.headers?.()).toBe(first)
    expect(reads).toBe(readsForKey + 1)
  })

  it('gives {} for a message without headers', () => {
    const translated = toDelivery(fakeMsg({ seq: 7 }), settings)
    if (!translated.ok) throw new Error(translated.reason)
    expect(translated.delivery.headers?.()).toEqual({})
  })
})

if (await requireService('NATS JetStream', NATS_PORT)) {
  describe('consumeJetStream on a real NATS server: headers() and lag()', () => {
    let nc: NatsConnection
    const topologies: Topology[] = []

    beforeAll(async () => {
      nc = await connectNats()
    })
    afterAll(async () => {
      for (const t of topologies) await t.remove()
      await nc.close()
    })

    async function topology(prefix: string): Promise<Topology> {
      const t = await createTopology(nc, `idem_js_obs_${prefix}`)
      topologies.push(t)
      return t
    }

    const idem = () => new Idempotency({ store: new MemoryStore(), lease: '30s' })

    it("gives the handler the producer's headers, a repeated one joined, names as sent", async () => {
      const t = await topology('headers')
      const producer = jetStreamProducer({ client: nc, subject: t.subject })
      await producer.publish({
        id: 'traced-1',
        payload: { n: 1 },
        headers: { traceparent: TRACEPARENT, 'x-other': 'v' },
      })
      const repeated = natsHeaderSet()
      repeated.append('X-Tag', 'a')
      repeated.append('X-Tag', 'b')
      await nc
        .jetstream()
        .publish(t.subject, new TextEncoder().encode('{"n":2}'), { msgID: 'tagged-2', headers: repeated })
      const seen = new Map<string, Readonly<Record<string, string | undefined>>>()
      const sub = await consumeJetStream({
        client: nc,
        stream: t.stream,
        durable: t.durable,
        deadLetterSubject: t.deadLetterSubject,
        idem: idem(),
        handler: (_payload, ctx) => {
          seen.set(ctx.key, ctx.delivery.headers?.() ?? {})
        },
      })
      await until('both messages handled', () => seen.size === 2)
      await sub.close()
      await producer.close()

      expect(seen.get('traced-1')).toEqual({ 'Nats-Msg-Id': 'traced-1', traceparent: TRACEPARENT, 'x-other': 'v' })
      expect(seen.get('tagged-2')).toEqual({ 'Nats-Msg-Id': 'tagged-2', 'X-Tag': 'a, b' })
    })

    it("counts the consumer's undelivered messages (num_pending) as lag, down to 0 once drained", async () => {
      const t = await topology('lag')
      const producer = jetStreamProducer({ client: nc, subject: t.subject })
      for (let i = 0; i < 5; i++) await producer.publish({ id: `lag-${i}`, payload: { n: i } })
      let release!: () => void
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let started = 0
      const settled: DeliveryResult[] = []
      const sub = await consumeJetStream({
        client: nc,
        stream: t.stream,
        durable: t.durable,
        deadLetterSubject: t.deadLetterSubject,
        idem: idem(),
        concurrency: 1,
        on: { settled: (result) => settled.push(result) },
        handler: async () => {
          started++
          await held
        },
      })
      // One message pulled (capacity 1) and held by the handler: four not yet delivered.
      await until('the first handler to start', () => started === 1)
      await until(
        () => 'lag 4',
        async () => (await lagOf(sub)) === 4,
      )
      expect((await t.consumerInfo()).num_ack_pending).toBe(1)
      release()
      await until('all five settled', () => settled.length === 5)
      await until(
        () => 'lag 0',
        async () => (await lagOf(sub)) === 0,
      )
      await sub.close()
      await producer.close()
      expect(settled.every((r) => r.outcome === 'executed')).toBe(true)
      expect(await lagOf(sub)).toBeUndefined()
    })

    it('rejects lag() with the server error when the consumer is gone, and goes on consuming once it is back', async () => {
      const t = await topology('gone')
      const settled: DeliveryResult[] = []
      const sub = await consumeJetStream({
        client: nc,
        stream: t.stream,
        durable: t.durable,
        deadLetterSubject: t.deadLetterSubject,
        idem: idem(),
        fetchExpires: '1s',
        onError: () => {},
        on: { settled: (result) => settled.push(result) },
        handler: () => {},
      })
      expect(await lagOf(sub)).toBe(0)
      await t.jsm.consumers.delete(t.stream, t.durable)
      await expect(lagOf(sub)).rejects.toThrow(/consumer not found/i)
      await t.jsm.consumers.add(t.stream, { durable_name: t.durable, ack_policy: AckPolicy.Explicit, max_deliver: -1 })
      const producer = jetStreamProducer({ client: nc, subject: t.subject })
      await producer.publish({ id: 'after', payload: { n: 1 } })
      await until('the message published after to be handled', () => settled.length === 1)
      expect(await lagOf(sub)).toBe(0)
      await sub.close()
      await producer.close()
    })
  })
}
