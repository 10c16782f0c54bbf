// The consumer core's `window` option, on the in-memory fake broker: a repeat within the window is
// acknowledged without a claim or a run; a failed delivery leaves the window; a broker redelivery
// bypasses it; the window being down is retried, never acknowledged.

import { describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { IdempotentConsumer } from '../consumer/consumer.js'
import type { DeliveryResult } from '../consumer/types.js'
import { Idempotency } from '../core/idempotency.js'
import { StoreUnavailableError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { memoryWindow } from './memory-window.js'
import { DedupWindow, type WindowStore } from './window.js'

/** A MemoryStore counting claims: the window's point is that repeats never reach it. */
function countingStore() {
  const store = new MemoryStore()
  const claims = { count: 0 }
  const begin = store.begin.bind(store)
  const beginMany = store.beginMany.bind(store)
  store.begin = (...args) => {
    claims.count++
    return begin(...args)
  }
  store.beginMany = (...args) => {
    claims.count += args[0].length
    return beginMany(...args)
  }
  return { store, claims }
}

describe.each([false, true])('the consumer core with a dedup window (batch %s)', (batch) => {
  it('acks a repeat within the window unrun and unclaimed, reported replayed with reason window', async () => {
    const { store, claims } = countingStore()
    const runs: string[] = []
    const settled: DeliveryResult[] = []
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    const consumer = new IdempotentConsumer<{ n: number; device: string }>({
      idem: new Idempotency({ store }),
      window,
      windowSource: (delivery) => delivery.payload.device,
      handler: (_payload, ctx) => void runs.push(ctx.key),
      on: { settled: (result) => settled.push(result) },
    })
    const broker = new FakeBroker<{ n: number; device: string }>()
    for (const [key, device] of [
      ['a', 'd1'],
      ['a', 'd1'],
      ['b', 'd1'],
      ['c', 'd2'],
      ['b', 'd1'],
    ] as const) {
      broker.publish(key, { n: 1, device })
    }
    await broker.consume(consumer, { batch })
    expect(runs.sort()).toEqual(['a', 'b', 'c'])
    expect(broker.acked).toHaveLength(5)
    const dropped = settled.filter((r) => r.reason === 'window: a repeat within the dedup window')
    expect(dropped.map((r) => [r.key, r.outcome])).toEqual([
      ['a', 'replayed'],
      ['b', 'replayed'],
    ])
    // Three claims: the two window repeats never reached the store.
    expect(claims.count).toBe(3)
    // Marked under the source windowSource gave.
    expect(
      await window.seenMany([
        { source: 'd2', id: 'c' },
        { source: 'd1', id: 'c' },
      ]),
    ).toEqual([true, false])
  })

  it('forgets a delivery that failed, so a copy published again within the window runs', async () => {
    let fail = true
    const runs: string[] = []
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem: new Idempotency({ store: new MemoryStore() }),
      window,
      maxAttempts: 1,
      handler: (_payload, ctx) => {
        runs.push(ctx.key)
        if (fail) throw new Error('downstream refused')
      },
    })
    const broker = new FakeBroker<{ n: number }>()
    broker.publish('x', { n: 1 })
    await broker.consume(consumer, { batch })
    expect(broker.deadLettered.map((d) => d.key)).toEqual(['x'])
    await new Promise((resolve) => setTimeout(resolve, 10))
    // Without the forget, this copy would be dropped as a repeat of a message never handled.
    fail = false
    broker.publish('x', { n: 1 })
    broker.publish('y', { n: 1 })
    await broker.consume(consumer, { batch })
    expect(runs).toEqual(['x', 'x', 'y'])
    expect(await window.seen('', 'x')).toBe(true)
  })

  it('lets a broker redelivery through the window (its first handling may never have finished)', async () => {
    const window = new DedupWindow({ store: memoryWindow(), window: '1m' })
    // As after a crash between the mark and the outcome: the id is marked, the message redelivered.
    await window.seen('', 'crashed')
    const runs: string[] = []
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem: new Idempotency({ store: new MemoryStore() }),
      window,
      handler: (_payload, ctx) => void runs.push(ctx.key),
    })
    const broker = new FakeBroker<{ n: number }>()
    const message = broker.publish('crashed', { n: 1 })
    message.deliveryCount = 1 // delivered once before: this is delivery 2
    broker.publish('crashed', { n: 1 }) // a publisher copy: delivery 1, dropped
    await broker.consume(consumer, { batch })
    expect(runs).toEqual(['crashed'])
    expect(broker.acked).toHaveLength(2)
  })

  it('retries, never acks, while the window is down, and runs once it is back', async () => {
    let down = 2
    const memory = memoryWindow()
    const flaky: WindowStore = {
      mark: (entries, windowMs) =>
        down-- > 0 ? Promise.reject(new StoreUnavailableError('window down')) : memory.mark(entries, windowMs),
      forget: (entries) => memory.forget(entries),
    }
    const runs: string[] = []
    const settled: DeliveryResult[] = []
    const consumer = new IdempotentConsumer<{ n: number }>({
      idem: new Idempotency({ store: new MemoryStore() }),
      window: new DedupWindow({ store: flaky, window: '1m' }),
      maxAttempts: 1,
      backoff: () => 0,
      handler: (_payload, ctx) => void runs.push(ctx.key),
      on: { settled: (result) => settled.push(result) },
    })
    const broker = new FakeBroker<{ n: number }>()
    broker.publish('k', { n: 1 })
    await broker.consume(consumer, { batch })
    // maxAttempts 1, yet never dead-lettered: the window being down is not the message's fault.
    expect(broker.deadLettered).toEqual([])
    expect(settled[0]).toMatchObject({ outcome: 'retried', reason: expect.stringMatching(/window down/) })
    expect(runs).toEqual(['k'])
  })
})

it('refuses a window that is not one', () => {
  const idem = new Idempotency({ store: new MemoryStore() })
  expect(() => new IdempotentConsumer({ idem, handler: () => {}, window: {} as never })).toThrow(/DedupWindow/)
})
