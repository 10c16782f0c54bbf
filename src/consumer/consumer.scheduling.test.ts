import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { FakeBroker } from '../../test/support/consumer/fake-broker.test-helper.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { IdempotentConsumer } from './consumer.js'
import { Lanes } from './lanes.js'

function gauge() {
  let now = 0
  let max = 0
  return {
    enter() {
      now++
      max = Math.max(max, now)
    },
    leave() {
      now--
    },
    get max() {
      return max
    },
  }
}

describe('scheduling', () => {
  it('never runs more handlers at once than its concurrency', async () => {
    const running = gauge()
    const consumer = new IdempotentConsumer<number>({
      idem: new Idempotency({ store: new MemoryStore() }),
      concurrency: 3,
      handler: async (n) => {
        running.enter()
        await sleep(1 + (n % 4))
        running.leave()
      },
    })
    const broker = new FakeBroker<number>()
    for (let i = 0; i < 40; i++) broker.publish(`m${i}`, i)
    // Push them all at once, as a push-based broker with a large prefetch would.
    const results = await Promise.all(broker.take().map((d) => consumer.handle(d)))
    expect(results.every((r) => r.outcome === 'executed')).toBe(true)
    expect(running.max).toBe(3)
    expect(consumer.inFlight).toBe(0)
  })

  it('handles messages of one ordering key one at a time, in arrival order', async () => {
    const log: string[] = []
    const running = new Map<string, number>()
    let overlaps = 0
    const consumer = new IdempotentConsumer<{ lane: string; seq: number }>({
      idem: new Idempotency({ store: new MemoryStore() }),
      concurrency: 8,
      handler: async ({ lane, seq }) => {
        if ((running.get(lane) ?? 0) > 0) overlaps++
        running.set(lane, (running.get(lane) ?? 0) + 1)
        log.push(`${lane}:${seq}`)
        await sleep(seq % 3)
        running.set(lane, (running.get(lane) ?? 0) - 1)
      },
    })
    const broker = new FakeBroker<{ lane: string; seq: number }>()
    for (let seq = 0; seq < 12; seq++) {
      for (const lane of ['a', 'b', 'c']) broker.publish(`${lane}-${seq}`, { lane, seq }, lane)
    }
    await Promise.all(broker.take().map((d) => consumer.handle(d)))
    expect(overlaps).toBe(0)
    for (const lane of ['a', 'b', 'c']) {
      const order = log.filter((entry) => entry.startsWith(`${lane}:`)).map((entry) => Number(entry.split(':')[1]))
      expect(order).toEqual([...Array(12).keys()])
    }
    // The lanes did run side by side.
    expect(log.slice(0, 3).sort()).toEqual(['a:0', 'b:0', 'c:0'])
  })

  it('uses the key as the ordering key by default', async () => {
    const starts: number[] = []
    const consumer = new IdempotentConsumer<number>({
      idem: new Idempotency({ store: new MemoryStore() }),
      handler: async (n) => {
        starts.push(n)
        await sleep(5)
      },
    })
    const broker = new FakeBroker<number>()
    broker.publish('same', 1)
    broker.publish('same', 1)
    const results = await Promise.all(broker.take().map((d) => consumer.handle(d)))
    // The copy waited for the first to settle, so it is a replay rather than an IN_PROGRESS retry.
    expect(results.map((r) => r.outcome)).toEqual(['executed', 'replayed'])
    expect(starts).toEqual([1])
  })

  it('reports capacity and wakes a puller when a slot frees up', async () => {
    const gates: (() => void)[] = []
    const consumer = new IdempotentConsumer<number>({
      idem: new Idempotency({ store: new MemoryStore() }),
      concurrency: 2,
      handler: () => new Promise<void>((resolve) => gates.push(resolve)),
    })
    const broker = new FakeBroker<number>()
    for (let i = 0; i < 3; i++) broker.publish(`m${i}`, i)
    expect(consumer.capacity).toBe(2)
    const [a, b, c] = broker.take()
    const handled = [consumer.handle(a as never), consumer.handle(b as never)]
    expect(consumer.inFlight).toBe(2)
    expect(consumer.capacity).toBe(0)
    let woke = false
    const waiting = consumer.whenCapacity().then(() => {
      woke = true
    })
    // A push-based broker may still hand over more: it is queued, not refused.
    const third = consumer.handle(c as never)
    expect(consumer.inFlight).toBe(3)
    await sleep(20)
    expect(woke).toBe(false)
    gates.shift()?.()
    await handled[0]
    await sleep(5)
    expect(woke).toBe(false) // the queued third took the freed slot: still 2 in flight
    gates.shift()?.()
    await waiting
    expect(consumer.capacity).toBe(1)
    while (gates.length === 0) await sleep(1)
    gates.shift()?.()
    await Promise.all([...handled, third])
    expect(consumer.capacity).toBe(2)
  })
})

describe('Lanes', () => {
  it('drains only the jobs that have not started', async () => {
    const started: string[] = []
    let release!: () => void
    const job = (lane: string, name: string) => ({
      lane,
      name,
      start: () => {
        started.push(name)
        return new Promise<void>((resolve) => {
          release = resolve
        })
      },
    })
    const lanes = new Lanes<ReturnType<typeof job>>(1)
    lanes.push(job('x', 'x1'))
    lanes.push(job('x', 'x2'))
    lanes.push(job('y', 'y1'))
    expect(started).toEqual(['x1'])
    expect(
      lanes
        .drain()
        .map((j) => j.name)
        .sort(),
    ).toEqual(['x2', 'y1'])
    release()
    await sleep(1)
    expect(started).toEqual(['x1'])
    expect(lanes.busy('x')).toBe(false)
  })
})
