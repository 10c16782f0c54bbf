// idem/metrics on a consumer: deliveries received and settled by outcome, broker errors and
// durations from its events; in flight read and lag asked (of an adapter's handle) at scrape, a
// failing or silent broker leaving the lag out without failing the scrape.

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { FakeBroker } from '../../../test/support/consumer/fake-broker.test-helper.js'
import { samplesOf, sumOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import { type ConsumerHandle, consumerHandle } from '../../consumer/handle.js'
import type { Delivery } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemMetrics } from './index.js'

class Poison extends Error {
  override name = 'Poison'
}

function setup(handler: (payload: { n: number }) => unknown = () => 'ok') {
  const idem = new Idempotency({ store: new MemoryStore(), isFinal: (error) => error instanceof Poison })
  const consumer = new IdempotentConsumer<{ n: number }>({ idem, handler, backoff: () => 1 })
  const broker = new FakeBroker<{ n: number }>()
  const registry = new Registry()
  const metrics = idemMetrics({ registry })
  return { idem, consumer, broker, registry, metrics }
}

/** A handle as an adapter returns it, whose broker answers `lag` with `lag`. */
function handleOf<P>(consumer: IdempotentConsumer<P>, lag: () => Promise<number | undefined>): ConsumerHandle<P> {
  return consumerHandle(consumer, { rejected: 0 }, { close: async () => {}, done: Promise.resolve() }, { lag })
}

function one<P>(broker: FakeBroker<P>, key: string, payload: P): Delivery<P> {
  broker.publish(key, payload)
  const [delivery] = broker.take(1)
  if (delivery === undefined) throw new Error('no delivery')
  return delivery
}

describe('consumer metrics', () => {
  it('count received and settled deliveries by outcome, broker errors and durations', async () => {
    const { consumer, broker, registry, metrics } = setup((payload) => {
      if (payload.n === 3) throw new Error('flaky')
      if (payload.n === 4) throw new Poison('never')
      return 'ok'
    })
    metrics.watch(consumer, { name: 'orders' })
    expect((await consumer.handle(one(broker, 'm1', { n: 1 }))).outcome).toBe('executed')
    expect((await consumer.handle(one(broker, 'm2', { n: 2 }))).outcome).toBe('executed')
    expect((await consumer.handle(one(broker, 'm1', { n: 1 }))).outcome).toBe('replayed')
    expect((await consumer.handle(one(broker, 'm3', { n: 3 }))).outcome).toBe('retried')
    expect((await consumer.handle(one(broker, 'm4', { n: 4 }))).outcome).toBe('dead_lettered')
    broker.fail('ack', 1)
    await consumer.handle(one(broker, 'm5', { n: 5 }))

    const orders = { consumer: 'orders' }
    expect(await samplesOf(registry, 'idem_consumer_received_total')).toEqual([{ labels: orders, value: 6 }])
    expect(await samplesOf(registry, 'idem_consumer_settled_total')).toEqual([
      { labels: { ...orders, outcome: 'executed' }, value: 3 },
      { labels: { ...orders, outcome: 'replayed' }, value: 1 },
      { labels: { ...orders, outcome: 'retried' }, value: 1 },
      { labels: { ...orders, outcome: 'dead_lettered' }, value: 1 },
    ])
    expect(await samplesOf(registry, 'idem_consumer_broker_errors_total')).toEqual([
      { labels: { ...orders, operation: 'ack' }, value: 1 },
    ])
    expect(await sumOf(registry, 'idem_consumer_duration_seconds_count', orders)).toBe(6)
    expect(await samplesOf(registry, 'idem_consumer_in_flight')).toEqual([{ labels: orders, value: 0 }])
    // A core watched without its adapter's handle cannot tell the lag.
    expect(await samplesOf(registry, 'idem_consumer_lag')).toEqual([])
  })

  it('reads in flight at scrape', async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const { consumer, broker, registry, metrics } = setup(() => gate)
    metrics.watch(consumer)
    const first = consumer.handle(one(broker, 'a', { n: 1 }))
    const second = consumer.handle(one(broker, 'b', { n: 2 }))
    expect(await samplesOf(registry, 'idem_consumer_in_flight')).toEqual([
      { labels: { consumer: 'default' }, value: 2 },
    ])
    release()
    await Promise.all([first, second])
    expect(await samplesOf(registry, 'idem_consumer_in_flight')).toEqual([
      { labels: { consumer: 'default' }, value: 0 },
    ])
  })

  it("asks an adapter's handle for the lag at scrape; a failing or silent broker leaves it out, and the scrape succeeds", async () => {
    const { consumer, registry, metrics, idem } = setup()
    metrics.watch(
      handleOf(consumer, async () => 42),
      { name: 'fine' },
    )
    const failing = new IdempotentConsumer({ idem, handler: () => 1 })
    metrics.watch(
      handleOf(failing, () => Promise.reject(new Error('channel closed'))),
      { name: 'failing' },
    )
    const silent = new IdempotentConsumer({ idem, handler: () => 1 })
    metrics.watch(
      handleOf(silent, async () => undefined),
      { name: 'silent' },
    )

    expect(await samplesOf(registry, 'idem_consumer_lag')).toEqual([{ labels: { consumer: 'fine' }, value: 42 }])
    const text = await registry.metrics()
    expect(text).toContain('idem_consumer_lag{consumer="fine"} 42\n')
    expect(text).toContain('idem_consumer_in_flight{consumer="failing"} 0\n')
  })

  it('takes the lag from the handle when the core was watched first', async () => {
    const { consumer, registry, metrics } = setup()
    metrics.watch(consumer, { name: 'orders' })
    metrics.watch(
      handleOf(consumer, async () => 7),
      { name: 'orders' },
    )
    expect(await samplesOf(registry, 'idem_consumer_lag')).toEqual([{ labels: { consumer: 'orders' }, value: 7 }])
    expect(() => metrics.watch(consumer, { name: 'other' })).toThrow(/watched already, as "orders"/)
  })

  it('keeps the counts of a consumer that stops being watched, and drops its gauges', async () => {
    const { consumer, broker, registry, metrics } = setup()
    const stop = metrics.watch(consumer, { name: 'orders' })
    await consumer.handle(one(broker, 'a', { n: 1 }))
    stop()
    await consumer.handle(one(broker, 'b', { n: 1 }))
    expect(await samplesOf(registry, 'idem_consumer_received_total')).toEqual([
      { labels: { consumer: 'orders' }, value: 1 },
    ])
    expect(await samplesOf(registry, 'idem_consumer_in_flight')).toEqual([])
  })
})
