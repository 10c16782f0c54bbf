import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { counted } from '../../test/support/core/counted-store.test-helper.js'
import type { IdempotencyStore } from '../contract/types.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { SqliteStore } from '../stores/sqlite/sqlite-store.js'
import { IdempotentConsumer } from './consumer.js'
import type { RunConsumerOptions } from './types.js'

const opened: IdempotencyStore[] = []
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => {})
})

describe.each([
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ client: ':memory:' })],
] as const)('batches on %s', (_name, makeStore) => {
  function setup(options: Partial<RunConsumerOptions<string>> = {}) {
    const inner: IdempotencyStore = makeStore()
    opened.push(inner)
    const { store, calls } = counted(inner)
    const idem = new Idempotency({ store })
    const runs = new Map<string, number>()
    const consumer = new IdempotentConsumer<string>({
      idem,
      concurrency: 16,
      backoff: () => 1,
      handler: (_payload, ctx) => {
        runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
      },
      ...options,
    })
    return { idem, calls, runs, consumer, broker: new FakeBroker<string>() }
  }

  it('claims the whole batch in one round trip, stores it in one, and acks every message', async () => {
    const { calls, consumer, broker, runs } = setup()
    for (let i = 0; i < 10; i++) broker.publish(`m${i}`, `p${i}`)
    const results = await consumer.handleBatch(broker.take())
    expect(results.map((r) => r.outcome)).toEqual(Array(10).fill('executed'))
    expect(calls).toEqual({ beginMany: 1, completeMany: 1 })
    expect(broker.acked).toHaveLength(10)
    expect([...runs.values()]).toEqual(Array(10).fill(1))
  })

  it('acks the rest of a batch when one message fails, and never redoes them', async () => {
    let failures = 0
    const runs = new Map<string, number>()
    const { consumer, broker } = setup({
      handler: (payload, ctx) => {
        runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
        if (payload === 'bad' && failures++ < 1) throw new Error('bad message')
      },
    })
    for (let i = 0; i < 5; i++) broker.publish(`m${i}`, i === 2 ? 'bad' : 'good')
    const results = await consumer.handleBatch(broker.take())
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'executed', 'retried', 'executed', 'executed'])
    expect(broker.acked.map((m) => m.key).sort()).toEqual(['m0', 'm1', 'm3', 'm4'])
    await broker.consume(consumer, { batch: true })
    expect(broker.acked.map((m) => m.key).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    expect(Object.fromEntries(runs)).toEqual({ m0: 1, m1: 1, m2: 2, m3: 1, m4: 1 })
  })

  it('acks each message as it settles, not when the whole batch is done', async () => {
    let release!: () => void
    const { consumer, broker } = setup({
      handler: (payload) => (payload === 'slow' ? new Promise<void>((resolve) => (release = resolve)) : undefined),
    })
    broker.publish('quick', 'quick')
    broker.publish('slow', 'slow')
    const batch = consumer.handleBatch(broker.take())
    while (broker.acked.length === 0) await sleep(1)
    expect(broker.acked.map((m) => m.key)).toEqual(['quick'])
    release()
    await batch
    expect(broker.acked.map((m) => m.key)).toEqual(['quick', 'slow'])
  })

  it('runs a key repeated in the batch once, acking both copies', async () => {
    const { consumer, broker, runs } = setup()
    broker.publish('a', 'x')
    broker.publish('b', 'y')
    broker.publish('a', 'x')
    const results = await consumer.handleBatch(broker.take())
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'executed', 'replayed'])
    expect(Object.fromEntries(runs)).toEqual({ a: 1, b: 1 })
  })

  it('replays a copy in a later batch of a key still running here, instead of handing it back for a lease', async () => {
    let release!: () => void
    const { consumer, broker, runs } = setup({
      handler: (payload, ctx) => {
        runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
        if (payload === 'slow') return new Promise<void>((resolve) => (release = resolve))
      },
    })
    broker.publish('k', 'slow')
    broker.publish('a', 'x')
    const first = consumer.handleBatch(broker.take())
    while (release === undefined) await sleep(1)
    broker.publish('k', 'slow')
    broker.publish('b', 'y')
    const second = consumer.handleBatch(broker.take())
    await sleep(5)
    release()
    expect((await first).map((r) => r.outcome)).toEqual(['executed', 'executed'])
    expect((await second).map((r) => r.outcome)).toEqual(['replayed', 'executed'])
    expect(Object.fromEntries(runs)).toEqual({ k: 1, a: 1, b: 1 })
    expect(broker.acked).toHaveLength(4)
  })

  it('keeps per-key order and the concurrency bound within a batch', async () => {
    let running = 0
    let max = 0
    const order: string[] = []
    const { consumer, broker, calls } = setup({
      concurrency: 3,
      handler: async (payload) => {
        running++
        max = Math.max(max, running)
        order.push(payload)
        await sleep(3)
        running--
      },
    })
    for (let i = 0; i < 4; i++) broker.publish(`x${i}`, `x${i}`, 'x')
    for (let i = 0; i < 6; i++) broker.publish(`y${i}`, `y${i}`)
    await consumer.handleBatch(broker.take())
    expect(max).toBe(3)
    expect(order.filter((p) => p.startsWith('x'))).toEqual(['x0', 'x1', 'x2', 'x3'])
    expect(broker.acked).toHaveLength(10)
    // The lane's later messages were claimed with the batch and waited their turn: one claim in all.
    expect(calls.beginMany).toBe(1)
    expect(calls.begin ?? 0).toBe(0)
  })

  it('claims a batch of one ordering key in one round trip and runs it in batch order', async () => {
    const order: string[] = []
    const { consumer, broker, calls } = setup({
      handler: async (payload) => {
        await sleep(payload === 'p0' ? 20 : 1)
        order.push(payload)
      },
    })
    // One Kafka partition: every message shares the ordering key.
    for (let i = 0; i < 6; i++) broker.publish(`m${i}`, `p${i}`, 'partition-0')
    const results = await consumer.handleBatch(broker.take())
    expect(results.map((r) => r.outcome)).toEqual(Array(6).fill('executed'))
    expect(order).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5'])
    expect(calls.beginMany).toBe(1)
    expect(calls.begin ?? 0).toBe(0)
  })

  it('claims a second batch of a busy ordering key in one round trip and runs it after the first', async () => {
    const order: string[] = []
    const { consumer, broker, calls } = setup({
      handler: async (payload) => {
        await sleep(2)
        order.push(payload)
      },
    })
    for (let i = 0; i < 4; i++) broker.publish(`a${i}`, `a${i}`, 'partition-0')
    const first = consumer.handleBatch(broker.take())
    // The next fetch of the same partition, while the first batch still runs.
    for (let i = 0; i < 4; i++) broker.publish(`b${i}`, `b${i}`, 'partition-0')
    const second = consumer.handleBatch(broker.take())
    await Promise.all([first, second])
    expect(order).toEqual(['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3'])
    expect(calls.beginMany).toBe(2)
    expect(calls.begin ?? 0).toBe(0)
  })

  it('hands back a withdrawn batch member without running it or counting an attempt', async () => {
    const ran: string[] = []
    let rewound = false
    const { consumer, broker, idem } = setup({
      handler: (payload) => {
        ran.push(payload)
        // The first message fails and the broker rewinds the partition to it: later ones are withdrawn.
        if (payload === 'p0') {
          rewound = true
          throw new Error('transient')
        }
      },
    })
    const deliveries = []
    for (let i = 0; i < 3; i++) broker.publish(`w${i}`, `p${i}`, 'partition-0')
    for (const delivery of broker.take()) {
      deliveries.push(delivery.key === 'w0' ? delivery : { ...delivery, withdrawn: () => rewound })
    }
    const results = await consumer.handleBatch(deliveries)
    expect(results.map((r) => r.outcome)).toEqual(['retried', 'retried', 'retried'])
    expect(results[1]).toMatchObject({ delayMs: 0, reason: expect.stringContaining('withdrawn') })
    expect(ran).toEqual(['p0'])
    // Their claims were released: the redelivery runs them at once.
    expect((await idem.run({ key: 'w1', payload: 'p1' }, () => 'ran')).status).toBe('executed')
  })

  it('releases the claims of batch messages handed back at shutdown, acking none of them', async () => {
    const { consumer, broker, idem } = setup({ concurrency: 1, handler: () => sleep(30) })
    for (let i = 0; i < 3; i++) broker.publish(`m${i}`, 'p')
    const batch = consumer.handleBatch(broker.take())
    await sleep(5)
    await consumer.close()
    expect((await batch).map((r) => r.outcome)).toEqual(['executed', 'retried', 'retried'])
    expect(broker.acked.map((m) => m.key)).toEqual(['m0'])
    // Their claims were released, so another consumer runs them at once (no IN_PROGRESS wait).
    await sleep(5)
    const next = await idem.run({ key: 'm1', payload: 'p' }, () => 'ran')
    expect(next.status).toBe('executed')
  })

  it('has one effect per key under batches full of duplicates, failures and a lost ack', async () => {
    let flaky = 0
    const { consumer, broker, runs } = setup({
      concurrency: 8,
      handler: async (payload, ctx) => {
        await sleep(1)
        if (payload === 'flaky' && flaky++ % 2 === 0) throw new Error('flaky')
        runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
      },
    })
    broker.fail('ack', 3)
    for (let copy = 0; copy < 3; copy++) {
      for (let k = 0; k < 12; k++) broker.publish(`k${k}`, k % 5 === 0 ? 'flaky' : 'fine', `lane-${(k + copy) % 7}`)
    }
    await broker.consume(consumer, { batch: true })
    expect([...runs.values()]).toEqual(Array(12).fill(1))
    expect(broker.acked).toHaveLength(36)
    expect(broker.deadLettered).toEqual([])
  })
})

describe('batches with the store down', () => {
  it('hand every message back with a backoff, ack none, and run each once the store is back', async () => {
    const store = new MemoryStore()
    const beginMany = store.beginMany.bind(store)
    let outage = 2
    store.beginMany = (...args) =>
      outage-- > 0 ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6399')) : beginMany(...args)
    const runs = new Map<string, number>()
    const consumer = new IdempotentConsumer<number>({
      idem: new Idempotency({ store }),
      maxAttempts: 1,
      backoff: () => 7,
      handler: (_n, ctx) => {
        runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
      },
    })
    const broker = new FakeBroker<number>()
    for (let i = 0; i < 3; i++) broker.publish(`m${i}`, i)
    const results = await consumer.handleBatch(broker.take())
    expect(results).toMatchObject(
      Array(3).fill({ outcome: 'retried', delayMs: 7, reason: expect.stringMatching(/STORE_UNAVAILABLE/) }),
    )
    expect(broker.acked).toEqual([])
    await broker.consume(consumer, { batch: true })
    expect(broker.deadLettered).toEqual([])
    expect(Object.fromEntries(runs)).toEqual({ m0: 1, m1: 1, m2: 1 })
  })
})

describe('batches in transaction mode', () => {
  it('settle message by message (no beginMany: each message has its own transaction)', async () => {
    const { sqliteRig } = await import('../../test/support/transaction/transaction-rigs.test-helper.js')
    const rig = await sqliteRig()
    try {
      const consumer = new IdempotentConsumer<{ id: string }, unknown>({
        idem: rig.idem(),
        db: rig.db,
        transactionHandler: (_tx, payload, ctx) => rig.addEffect(ctx.sql, payload.id),
      })
      const broker = new FakeBroker<{ id: string }>()
      for (const id of ['a', 'b', 'a']) broker.publish(`batch-${id}`, { id })
      const results = await consumer.handleBatch(broker.take())
      expect(results.map((r) => r.outcome)).toEqual(['executed', 'executed', 'replayed'])
      expect([await rig.effect('a'), await rig.effect('b')]).toEqual([1, 1])
    } finally {
      await rig.cleanup()
    }
  })
})
