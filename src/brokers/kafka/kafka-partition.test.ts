// KafkaPartition with a fake host, driven the way the consumer core drives deliveries: a retry
// rewinds the partition (later deliveries not yet started are withdrawn and come back unrun, not
// counted as attempts), nothing is handed out again until they are back (so the partition is
// handled in offset order), deliveryCount counts real failures, a revoke drops everything.

import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Delivery } from '../../consumer/types.js'
import type { KafkaMessage } from './kafka-driver.js'
import { KafkaPartition, type PartitionHost } from './kafka-partition.js'

interface Order {
  n: number
}

class FakeHost implements PartitionHost<Order> {
  closing = false
  wakes = 0
  progress = 0
  failDeadLetters = false
  readonly deadLetters: { offset: bigint; key: string; reason: string; deliveryCount: number }[] = []

  prepare(message: KafkaMessage): { key: string; payload: Order } | { reject: string } {
    const text = String(message.value)
    if (!text.startsWith('{')) return { reject: `cannot decode the payload: ${text}` }
    return { key: `order-${message.offset}`, payload: JSON.parse(text) as Order }
  }

  async deadLetter(message: KafkaMessage, key: string, reason: string, deliveryCount: number): Promise<void> {
    await undefined
    if (this.failDeadLetters) throw new Error('the dead-letter topic is unavailable')
    this.deadLetters.push({ offset: message.offset, key, reason, deliveryCount })
  }

  readonly errors: unknown[] = []

  progressed(): void {
    this.progress++
  }

  onError(error: unknown): void {
    this.errors.push(error)
  }

  wake(): void {
    this.wakes++
  }

  rereads = 0
  reread(): void {
    this.rereads++
  }
}

function message(offset: number, key?: string, value = `{"n":${offset}}`): KafkaMessage {
  return {
    topic: 'orders',
    partition: 3,
    offset: BigInt(offset),
    key: key === undefined ? undefined : Buffer.from(key),
    value: Buffer.from(value),
    headers: new Map(),
    timestamp: 0n,
  }
}

function partitionWith(offsets: number[], byKey = false, keys?: string[]) {
  const host = new FakeHost()
  const partition = new KafkaPartition<Order>('orders', 3, byKey, host)
  offsets.forEach((offset, i) => {
    partition.add(message(offset, keys?.[i]))
  })
  return { host, partition }
}

function take(partition: KafkaPartition<Order>, max = 100): Delivery<Order>[] {
  const into: Delivery<Order>[] = []
  partition.take(max, into)
  return into
}

const offsetOf = (delivery: Delivery<Order>): number => Number((delivery.raw as KafkaMessage).offset)

/** What the core does with a delivery whose turn came: check it was not withdrawn, then run it. */
function started(delivery: Delivery<Order>): boolean {
  return delivery.withdrawn?.() !== true
}

describe('KafkaPartition', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('hands out messages in offset order, at most `max` at a time, each on the partition’s lane', () => {
    const { partition } = partitionWith([0, 1, 2, 3, 4])
    const first = take(partition, 3)
    expect(first.map(offsetOf)).toEqual([0, 1, 2])
    expect(first.map((d) => d.key)).toEqual(['order-0', 'order-1', 'order-2'])
    expect(new Set(first.map((d) => d.orderingKey))).toEqual(new Set(['orders/3']))
    expect(first.map((d) => d.deliveryCount)).toEqual([1, 1, 1])
    expect(take(partition).map(offsetOf)).toEqual([3, 4])
    expect(partition.held).toBe(5)
  })

  it('orders by record key within the partition with ordering "key"', () => {
    const { partition } = partitionWith([0, 1, 2], true, ['a', 'b', 'a'])
    const lanes = take(partition).map((d) => d.orderingKey)
    expect(lanes[0]).toBe(lanes[2])
    expect(lanes[0]).not.toBe(lanes[1])
  })

  it('drops a message read again after a rebalance or a reconnect', () => {
    const { partition } = partitionWith([0, 1])
    partition.add(message(0))
    partition.add(message(1))
    partition.add(message(2))
    expect(take(partition).map(offsetOf)).toEqual([0, 1, 2])
  })

  it('on a retry, withdraws the later deliveries not yet started: they come back unrun, not counted as attempts', async () => {
    const { host, partition } = partitionWith([0, 1, 2, 3, 4])
    const [d0, d1, d2, d3, d4] = take(partition) as Delivery<Order>[]
    expect(started(d0 as Delivery<Order>)).toBe(true)
    await d0?.ack()
    expect(started(d1 as Delivery<Order>)).toBe(true)
    await d1?.retry(0) // the handler of offset 1 failed
    // 2, 3 and 4 had not started: each is withdrawn when its turn comes and handed back.
    for (const d of [d2, d3, d4] as Delivery<Order>[]) {
      expect(d.withdrawn?.()).toBe(true)
      await d.retry(0)
    }
    const again = take(partition)
    expect(again.map(offsetOf)).toEqual([1, 2, 3, 4])
    // Offset 1 failed once; the withdrawn ones were never attempted.
    expect(again.map((d) => d.deliveryCount)).toEqual([2, 1, 1, 1])
    expect(host.deadLetters).toEqual([])
    // Only offset 0 is done: the group may move to 1, not past it.
    expect(partition.offsets.commitPoint()).toBe(1n)
  })

  it('hands out nothing after a retry until every withdrawn delivery is back, so the partition stays in order', async () => {
    const { host, partition } = partitionWith([0, 1, 2, 3])
    const [d0, d1, d2, d3] = take(partition) as Delivery<Order>[]
    await d0?.ack()
    started(d1 as Delivery<Order>)
    await d1?.retry(0)
    // More records arrive while 2 and 3 are still in the core, to be withdrawn at their turn.
    partition.add(message(4))
    partition.add(message(5))
    // Handing out 1, 4 and 5 now would run 4 and 5 before 2 and 3.
    expect(take(partition)).toEqual([])
    expect(d2?.withdrawn?.()).toBe(true)
    await d2?.retry(0)
    expect(take(partition)).toEqual([])
    expect(d3?.withdrawn?.()).toBe(true)
    const wakes = host.wakes
    await d3?.retry(0)
    expect(host.wakes).toBeGreaterThan(wakes)
    expect(take(partition).map(offsetOf)).toEqual([1, 2, 3, 4, 5])
  })

  it('waits out the retry’s delay before handing the partition out again', async () => {
    const { partition } = partitionWith([0, 1])
    const [d0, d1] = take(partition) as Delivery<Order>[]
    started(d0 as Delivery<Order>)
    await d0?.retry(150)
    expect(d1?.withdrawn?.()).toBe(true)
    await d1?.retry(0)
    expect(take(partition)).toEqual([])
    await sleep(200)
    expect(take(partition).map(offsetOf)).toEqual([0, 1])
  })

  it('wakes the host again when its timer fired before the clock reached the end of the delay', async () => {
    vi.useFakeTimers()
    const { host, partition } = partitionWith([0])
    const [d] = take(partition) as Delivery<Order>[]
    started(d as Delivery<Order>)
    await d?.retry(100)
    // The clock lags the timers (a Node timer may fire a millisecond before Date.now() reads its time).
    vi.setSystemTime(Date.now() - 5)
    const wakes = host.wakes
    await vi.advanceTimersByTimeAsync(100)
    expect(host.wakes).toBe(wakes + 1)
    expect(take(partition)).toEqual([]) // still blocked for 5 ms: it must not be left without a timer
    await vi.advanceTimersByTimeAsync(10)
    expect(host.wakes).toBe(wakes + 2)
    expect(take(partition).map(offsetOf)).toEqual([0])
  })

  it('counts each real failure in deliveryCount, and forgets them once the message is done', async () => {
    const { partition } = partitionWith([7])
    for (const expected of [1, 2, 3]) {
      const [d] = take(partition) as Delivery<Order>[]
      expect(d?.deliveryCount).toBe(expected)
      started(d as Delivery<Order>)
      await d?.retry(0)
    }
    const [d] = take(partition) as Delivery<Order>[]
    expect(d?.deliveryCount).toBe(4)
    await d?.ack()
    expect(partition.offsets.commitPoint()).toBe(8n)
  })

  it('with ordering "key", leaves running deliveries alone and withdraws only what follows the failed offset', async () => {
    const { partition } = partitionWith([0, 1, 2, 3, 4, 5], true, ['a', 'b', 'c', 'b', 'd', 'e'])
    const handed = take(partition)
    const [d0, d1, d2] = handed as Delivery<Order>[]
    expect(started(d1 as Delivery<Order>)).toBe(true) // key b runs in parallel with key a
    started(d0 as Delivery<Order>)
    await d0?.retry(0) // offset 0 fails: everything after it that has not started is withdrawn
    expect(started(d2 as Delivery<Order>)).toBe(false)
    await d2?.retry(0)
    for (const d of handed.slice(3)) {
      expect(d.withdrawn?.()).toBe(true)
      await d.retry(0)
    }
    await d1?.ack() // it was running: its outcome counts
    const again = take(partition)
    expect(again.map(offsetOf)).toEqual([0, 2, 3, 4, 5])
    // A second failure, further on, withdraws what follows it, not what precedes it.
    const [a0, a2, a3, a4, a5] = again as Delivery<Order>[]
    started(a3 as Delivery<Order>)
    await a3?.retry(0)
    expect(a0?.withdrawn?.()).toBe(false)
    expect(a2?.withdrawn?.()).toBe(false)
    expect(a4?.withdrawn?.()).toBe(true)
    expect(a5?.withdrawn?.()).toBe(true)
    await a0?.ack()
    await a2?.ack()
    await a4?.retry(0)
    await a5?.retry(0)
    expect(take(partition).map((d) => [offsetOf(d), d.deliveryCount])).toEqual([
      [3, 2],
      [4, 1],
      [5, 1],
    ])
    expect(partition.offsets.commitPoint()).toBe(3n)
  })

  it('a withdrawn delivery settled without its turn (a replay, a key busy elsewhere) does not block or count', async () => {
    const { partition } = partitionWith([0, 1, 2])
    const [d0, d1, d2] = take(partition) as Delivery<Order>[]
    started(d0 as Delivery<Order>)
    await d0?.retry(0)
    await d1?.ack() // its record was already complete: acknowledged without running
    await d2?.retry(5000) // its key is in progress elsewhere: handed back before its turn
    const again = take(partition)
    expect(again.map((d) => [offsetOf(d), d.deliveryCount])).toEqual([
      [0, 2],
      [2, 1],
    ])
  })

  it('revoked: hands out nothing more, ignores acks of what the core still held, withdraws what had not started', async () => {
    const { host, partition } = partitionWith([0, 1, 2, 3])
    const [d0, d1, d2] = take(partition, 3) as Delivery<Order>[]
    started(d0 as Delivery<Order>)
    await d0?.ack()
    expect(partition.offsets.commitPoint()).toBe(1n)
    started(d1 as Delivery<Order>)
    const progress = host.progress
    partition.revoke()
    expect(partition.revoked).toBe(true)
    await d1?.ack() // finished after the revoke: another member owns the partition now
    expect(host.progress).toBe(progress)
    expect(d2?.withdrawn?.()).toBe(true)
    await d2?.retry(0)
    partition.add(message(4))
    expect(take(partition)).toEqual([])
    expect(partition.held).toBe(0)
    expect(partition.offsets.commitPoint()).toBe(1n)
  })

  it('dead-letters a message it cannot prepare, then counts its offset as done', async () => {
    const host = new FakeHost()
    const partition = new KafkaPartition<Order>('orders', 3, false, host)
    partition.add(message(0, undefined, 'not json'))
    partition.add(message(1))
    expect(take(partition).map(offsetOf)).toEqual([1])
    await sleep(0)
    expect(host.deadLetters).toEqual([
      { offset: 0n, key: 'orders/3/0', reason: 'cannot decode the payload: not json', deliveryCount: 1 },
    ])
    expect(partition.offsets.commitPoint()).toBe(1n)
  })

  it('holds a rejected message the dead-letter topic refused, says why, and sends it again a second later', async () => {
    vi.useFakeTimers()
    const host = new FakeHost()
    host.failDeadLetters = true
    const partition = new KafkaPartition<Order>('orders', 3, false, host)
    partition.add(message(0, undefined, 'not json'))
    partition.add(message(1))
    const [d1] = take(partition)
    await vi.advanceTimersByTimeAsync(0)
    expect(host.errors.map((e) => (e as Error).message)).toEqual(['the dead-letter topic is unavailable'])
    expect(d1?.withdrawn?.()).toBe(true) // handed out before the refusal: it comes back after offset 0
    await d1?.retry(0)
    host.failDeadLetters = false
    expect(take(partition)).toEqual([])
    await vi.advanceTimersByTimeAsync(1000)
    expect(take(partition).map(offsetOf)).toEqual([1])
    await vi.advanceTimersByTimeAsync(0)
    expect(host.deadLetters.map((d) => d.offset)).toEqual([0n])
    expect(partition.offsets.commitPoint()).toBe(1n)
  })

  it('a dead letter the broker refused is not done: the partition rewinds to it and sends it again', async () => {
    vi.useFakeTimers()
    const { host, partition } = partitionWith([0, 1])
    host.failDeadLetters = true
    const [d0, d1] = take(partition) as Delivery<Order>[]
    started(d0 as Delivery<Order>)
    await expect(d0?.deadLetter('poison')).rejects.toThrow('unavailable')
    expect(d1?.withdrawn?.()).toBe(true)
    await d1?.retry(0)
    expect(partition.offsets.commitPoint()).toBe(0n)
    host.failDeadLetters = false
    expect(take(partition)).toEqual([]) // it waits a second before it tries again
    vi.advanceTimersByTime(1000)
    const [again] = take(partition)
    await again?.deadLetter('poison')
    expect(host.deadLetters.map((d) => d.offset)).toEqual([0n])
    expect(partition.offsets.commitPoint()).toBe(1n)
  })
})
