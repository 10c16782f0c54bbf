import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import type { IdempotencyStore } from '../contract/types.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { SqliteStore } from '../stores/sqlite/sqlite-store.js'
import { IdempotentConsumer } from './consumer.js'
import { defaultBackoff } from './decide.js'
import type { ConsumerEvents, RunConsumerOptions } from './types.js'

const stores: [string, () => IdempotencyStore][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ client: ':memory:' })],
]

const opened: IdempotencyStore[] = []
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => {})
})

class PaymentDeclined extends Error {
  override name = 'PaymentDeclined'
}

describe.each(stores)('the consumer core on %s', (_name, makeStore) => {
  function setup(
    options: Partial<RunConsumerOptions<{ n: number }>> & { store?: IdempotencyStore; idem?: Idempotency } = {},
  ) {
    const store = options.store ?? makeStore()
    opened.push(store)
    const idem = options.idem ?? new Idempotency({ store })
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 5 })
    const effects = new Map<string, number>()
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem,
      handler: (_payload, ctx) => {
        effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
      },
      backoff: () => 1,
      ...options,
    })
    return { store, idem, broker, effects, consumer }
  }

  it('acknowledges a message only after its outcome is stored', async () => {
    const { idem, broker, consumer, store } = setup({ handler: () => 'done' })
    broker.publish('m1', { n: 1 })
    const [delivery] = broker.take()
    const statesAtAck: (string | undefined)[] = []
    const ack = delivery?.ack.bind(delivery) as () => Promise<void>
    const result = await consumer.handle({
      ...(delivery as NonNullable<typeof delivery>),
      ack: async () => {
        statesAtAck.push((await store.get(idem.recordId('m1')))?.state)
        return ack()
      },
    })
    expect(result).toEqual({ outcome: 'executed', key: 'm1' })
    expect(statesAtAck).toEqual(['completed'])
    expect(broker.acked.map((m) => m.key)).toEqual(['m1'])
  })

  it('acknowledges a duplicate without running the handler again', async () => {
    const { broker, consumer, effects } = setup()
    broker.publish('m1', { n: 1 })
    broker.publish('m1', { n: 1 })
    const [first, second] = broker.take()
    expect(await consumer.handle(first as never)).toMatchObject({ outcome: 'executed' })
    expect(await consumer.handle(second as never)).toMatchObject({ outcome: 'replayed' })
    expect(effects.get('m1')).toBe(1)
    expect(broker.acked).toHaveLength(2)
    expect(broker.retried).toEqual([])
  })

  it('has one effect per key when duplicates arrive concurrently', async () => {
    const { broker, consumer, effects } = setup({
      concurrency: 16,
      handler: async (_payload, ctx) => {
        effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
        await sleep(2)
      },
    })
    // Different ordering keys, so copies of one key really do run side by side.
    for (let copy = 0; copy < 5; copy++) for (let k = 0; k < 10; k++) broker.publish(`k${k}`, { n: k }, `lane-${copy}`)
    await broker.consume(consumer)
    expect([...effects.values()]).toEqual(Array(10).fill(1))
    expect(effects.size).toBe(10)
    expect(broker.acked).toHaveLength(50)
    expect(broker.deadLettered).toEqual([])
  })

  it('retries a duplicate that is in progress elsewhere after the holder’s lease', async () => {
    const { idem, broker, consumer, effects } = setup({ lease: '5s' })
    let finish!: () => void
    const elsewhere = idem.run(
      { key: 'm1', payload: { n: 1 }, lease: '5s' },
      () => new Promise<void>((r) => (finish = r)),
    )
    await sleep(5)
    broker.publish('m1', { n: 1 })
    const result = await consumer.handle(broker.take()[0] as never)
    expect(result).toMatchObject({ outcome: 'retried', reason: expect.stringMatching(/IN_PROGRESS/) })
    expect(result.delayMs).toBeGreaterThan(0)
    expect(result.delayMs).toBeLessThanOrEqual(5000)
    expect(broker.acked).toEqual([])
    finish()
    await elsewhere
    await broker.consume(consumer)
    expect(broker.acked).toHaveLength(1)
    expect(effects.get('m1')).toBeUndefined()
  })

  it('retries a failing handler with backoff, then dead-letters it at maxAttempts with the reason', async () => {
    let calls = 0
    const { broker, consumer } = setup({
      maxAttempts: 3,
      backoff: (attempt) => attempt * 2,
      handler: () => {
        calls++
        throw new TypeError('cannot read the invoice')
      },
    })
    broker.publish('poison', { n: 1 })
    await broker.consume(consumer)
    expect(calls).toBe(3)
    expect(broker.retried.map((r) => [r.deliveryCount, r.delayMs])).toEqual([
      [1, 2],
      [2, 4],
    ])
    expect(broker.deadLettered).toEqual([
      { key: 'poison', reason: 'TypeError: cannot read the invoice', deliveryCount: 3 },
    ])
    expect(broker.acked).toEqual([])
  })

  it('runs a retried message afresh once the handler succeeds', async () => {
    let calls = 0
    const { broker, consumer } = setup({
      handler: () => {
        if (++calls < 3) throw new Error('flaky')
        return 'ok'
      },
    })
    broker.publish('m1', { n: 1 })
    await broker.consume(consumer)
    expect(calls).toBe(3)
    expect(broker.acked).toHaveLength(1)
    expect(broker.retried).toHaveLength(2)
  })

  it('dead-letters an isFinal error at once, stores it, and dead-letters its duplicates without running', async () => {
    let calls = 0
    const { broker, consumer } = setup({
      isFinal: (error) => error instanceof PaymentDeclined,
      handler: () => {
        calls++
        throw new PaymentDeclined('card declined')
      },
    })
    broker.publish('pay-1', { n: 1 })
    const first = await consumer.handle(broker.take()[0] as never)
    expect(first).toMatchObject({ outcome: 'dead_lettered', reason: 'PaymentDeclined: card declined' })
    expect(first.error).toBeInstanceOf(PaymentDeclined)
    broker.publish('pay-1', { n: 1 })
    await broker.consume(consumer)
    expect(calls).toBe(1)
    expect(broker.deadLettered.map((d) => d.reason)).toEqual([
      'PaymentDeclined: card declined',
      'PaymentDeclined: card declined',
    ])
    expect(broker.retried).toEqual([])
  })

  it('takes isFinal from the Idempotency when the consumer has none', async () => {
    const store = makeStore()
    const idem = new Idempotency({ store, isFinal: (error) => (error as Error).name === 'PaymentDeclined' })
    const { broker, consumer } = setup({
      store,
      idem,
      handler: () => {
        throw new PaymentDeclined('card declined')
      },
    })
    broker.publish('pay-1', { n: 1 })
    expect(await consumer.handle(broker.take()[0] as never)).toMatchObject({ outcome: 'dead_lettered' })
    expect(broker.retried).toEqual([])
  })

  it('dead-letters a key reused with another payload', async () => {
    const { idem, broker, consumer, effects } = setup()
    await idem.run({ key: 'm1', payload: { n: 1 } }, () => 'first')
    broker.publish('m1', { n: 2 })
    const result = await consumer.handle(broker.take()[0] as never)
    expect(result).toMatchObject({ outcome: 'dead_lettered', reason: expect.stringMatching(/FINGERPRINT_MISMATCH/) })
    expect(broker.deadLettered).toHaveLength(1)
    expect(effects.size).toBe(0)
  })

  it('dead-letters a message whose key is unusable', async () => {
    const { broker, consumer, effects } = setup()
    broker.publish('bad key\n', { n: 1 })
    expect(await consumer.handle(broker.take()[0] as never)).toMatchObject({
      outcome: 'dead_lettered',
      reason: expect.stringMatching(/INVALID_KEY/),
    })
    expect(effects.size).toBe(0)
  })

  it('retries while the store is down, never acking or dead-lettering, and runs once it is back', async () => {
    const store = new FaultyStore(makeStore())
    store.fail('begin', 4)
    const { broker, consumer, effects } = setup({ store, maxAttempts: 2 })
    broker.publish('m1', { n: 1 })
    await broker.consume(consumer)
    expect(broker.retried).toHaveLength(4)
    expect(broker.deadLettered).toEqual([])
    expect(broker.acked.map((m) => m.deliveryCount)).toEqual([5])
    expect(effects.get('m1')).toBe(1)
  })

  it('does not acknowledge work whose outcome could not be stored', async () => {
    const store = new FaultyStore(makeStore())
    store.fail('complete')
    // The core retries a failing completion while the lease may be held: a short lease ends it soon.
    const { broker, consumer, effects } = setup({ store, lease: 300 })
    broker.publish('m1', { n: 1 })
    const result = await consumer.handle(broker.take()[0] as never)
    expect(result).toMatchObject({ outcome: 'retried', reason: expect.stringMatching(/STORE_UNAVAILABLE/) })
    expect(effects.get('m1')).toBe(1)
    expect(broker.acked).toEqual([])
  })

  it('acknowledges work that ran when another worker took the key over meanwhile', async () => {
    const store = new FaultyStore(makeStore())
    store.fail('extend')
    const { idem, broker, consumer } = setup({
      store,
      lease: 60,
      handler: async () => {
        await sleep(300)
        return 'mine'
      },
    })
    broker.publish('m1', { n: 1 })
    const handled = consumer.handle(broker.take()[0] as never)
    await sleep(150)
    const other = await idem.run({ key: 'm1', payload: { n: 1 } }, () => 'theirs')
    expect(other.status).toBe('executed')
    expect(await handled).toMatchObject({ outcome: 'executed', reason: expect.stringMatching(/LEASE_LOST/) })
    expect(broker.acked).toHaveLength(1)
  })

  it('keeps a handler longer than the lease to one run, renewing the broker’s timer meanwhile', async () => {
    const broker = new FakeBroker<{ n: number }>({ maxDelayMs: 20, extendEveryMs: 30 })
    const { consumer, effects } = setup({
      // Renewed every 80 ms: a loaded machine's timers must be late by 160 ms to lose it.
      lease: 240,
      handler: async (_payload, ctx) => {
        await sleep(800)
        effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
      },
    })
    broker.publish('slow', { n: 1 })
    broker.publish('slow', { n: 1 }, 'other-lane')
    await broker.consume(consumer)
    expect(effects.get('slow')).toBe(1)
    expect(broker.acked).toHaveLength(2)
    expect(broker.extended.get('slow')).toBeGreaterThanOrEqual(3)
    expect(broker.retried.length).toBeGreaterThan(0)
  })

  it('reports a refused extend and carries on', async () => {
    const broker = new FakeBroker<{ n: number }>({ extendEveryMs: 10 })
    broker.fail('extend', 2)
    const { consumer } = setup({ handler: () => sleep(80) })
    const errors: ConsumerEvents['broker_error'][] = []
    consumer.on('broker_error', (event) => errors.push(event))
    broker.publish('m1', { n: 1 })
    expect(await consumer.handle(broker.take()[0] as never)).toMatchObject({ outcome: 'executed' })
    expect(errors.map((e) => e.operation)).toEqual(['extend', 'extend'])
  })

  it('survives a failed ack: the redelivered duplicate is acknowledged without running again', async () => {
    const { broker, consumer, effects } = setup()
    const errors: ConsumerEvents['broker_error'][] = []
    consumer.on('broker_error', (event) => errors.push(event))
    broker.fail('ack')
    broker.publish('m1', { n: 1 })
    await broker.consume(consumer)
    expect(errors).toMatchObject([{ key: 'm1', operation: 'ack' }])
    expect(effects.get('m1')).toBe(1)
    expect(broker.acked.map((m) => m.deliveryCount)).toEqual([2])
  })

  it('survives a failed dead-letter: the redelivery is dead-lettered again', async () => {
    const { idem, broker, consumer } = setup()
    await idem.run({ key: 'm1', payload: { n: 1 } }, () => 'first')
    broker.fail('deadLetter')
    broker.publish('m1', { n: 2 })
    await broker.consume(consumer)
    expect(broker.deadLettered.map((d) => d.deliveryCount)).toEqual([2])
  })

  it('acknowledges work whose result cannot be stored, and its duplicates', async () => {
    const { broker, consumer } = setup({ handler: () => 10n })
    broker.publish('m1', { n: 1 })
    broker.publish('m1', { n: 1 })
    const [first, second] = broker.take()
    expect(await consumer.handle(first as never)).toMatchObject({
      outcome: 'executed',
      reason: expect.stringMatching(/RESULT_NOT_SERIALIZABLE/),
    })
    expect(await consumer.handle(second as never)).toMatchObject({ outcome: 'replayed' })
    expect(broker.acked).toHaveLength(2)
  })

  it('reports every delivery received and settled', async () => {
    const { broker, consumer } = setup()
    const seen: string[] = []
    consumer.on('received', (event) => seen.push(`received ${event.key} #${event.deliveryCount}`))
    consumer.on('settled', (event) => seen.push(`${event.outcome} ${event.key}`))
    broker.publish('m1', { n: 1 })
    broker.publish('m1', { n: 1 })
    await Promise.all(broker.take().map((delivery) => consumer.handle(delivery)))
    expect(seen).toEqual(['received m1 #1', 'received m1 #1', 'executed m1', 'replayed m1'])
  })
})

describe('the default backoff', () => {
  it('doubles from about a second to at most a minute, with jitter', () => {
    for (let i = 0; i < 50; i++) {
      const first = defaultBackoff(1)
      expect(first).toBeGreaterThanOrEqual(500)
      expect(first).toBeLessThanOrEqual(1000)
      const third = defaultBackoff(3)
      expect(third).toBeGreaterThanOrEqual(2000)
      expect(third).toBeLessThanOrEqual(4000)
      expect(defaultBackoff(30)).toBeLessThanOrEqual(60_000)
      expect(defaultBackoff(30)).toBeGreaterThanOrEqual(30_000)
    }
  })
})

describe('consumer options', () => {
  it('needs exactly one of handler and transactionHandler', () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    expect(() => new IdempotentConsumer({ idem } as never)).toThrowError(TypeError)
    expect(() => new IdempotentConsumer({ idem, handler: () => {}, concurrency: 0 })).toThrowError(RangeError)
    expect(() => new IdempotentConsumer({ idem, handler: () => {}, shutdownTimeout: 'soon' })).toThrowError(RangeError)
  })
})
