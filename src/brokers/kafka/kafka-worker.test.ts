// consumeKafka on a fake client, for what the real broker only shows by chance: a rebalance stops
// commits until the join says which partitions are still ours; a commit in flight across the join
// (which the client sends again under the new generation) keeps only those; nothing is committed
// between the JoinGroup answer and the join; close() during a reopen of the stream closes it; a
// partition newly ours whose stream starts past the group's committed offset (records fetched
// before the partition was ours again) is read again from that offset, never committed past it.

import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeKafka, type KafkaHandle } from './consume-kafka.js'
import type {
  KafkaAssignment,
  KafkaCommitOffset,
  KafkaConsumeOptions,
  KafkaConsumerClient,
  KafkaMessage,
  KafkaProducerClient,
} from './kafka-driver.js'

class FakeStream extends EventEmitter {
  closed = false
  pause(): void {}
  resume(): void {}
  async close(): Promise<void> {
    this.closed = true
  }
}

interface PendingCommit {
  offsets: KafkaCommitOffset[]
  resolve(): void
}

class FakeClient extends EventEmitter {
  readonly groupId = 'billing'
  generationId = 1
  memberId: string | null = 'member-1'
  assignments: KafkaAssignment[] | null = [{ topic: 'orders', partitions: [0, 1] }]
  readonly streams: FakeStream[] = []
  /** The options of each consume() call. */
  readonly consumed: KafkaConsumeOptions[] = []
  readonly commits: PendingCommit[] = []
  /** When set, consume() waits for `open()` before it answers. */
  holdConsume = false
  /** When set, commit() succeeds at once; else it waits for its `resolve()`. */
  autoCommit = true
  open: (() => void) | undefined
  /** The group's committed offsets of 'orders', by partition (-1n: none). */
  readonly groupOffsets: bigint[] = [-1n, -1n]

  async listCommittedOffsets(): Promise<Map<string, bigint[]>> {
    return new Map([['orders', [...this.groupOffsets]]])
  }

  async consume(options: KafkaConsumeOptions): Promise<FakeStream> {
    this.consumed.push(options)
    if (this.holdConsume) {
      await new Promise<void>((resolve) => {
        this.open = resolve
      })
    }
    const stream = new FakeStream()
    this.streams.push(stream)
    return stream
  }

  commit(options: { offsets: KafkaCommitOffset[] }): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        for (const { partition, offset } of options.offsets) this.groupOffsets[partition] = offset
        resolve()
      }
      this.commits.push({ offsets: options.offsets, resolve: done })
      if (this.autoCommit) done()
    })
  }

  async close(): Promise<void> {}

  /** A join that ends a rebalance, as the client reports it. */
  join(generationId: number, partitions: number[]): void {
    this.generationId = generationId
    this.assignments = [{ topic: 'orders', partitions }]
    this.emit('consumer:group:join', { groupId: this.groupId, memberId: this.memberId, generationId })
  }
}

const producer: KafkaProducerClient = {
  send: async () => undefined,
  close: async () => {},
}

function message(partition: number, offset: number): KafkaMessage {
  return {
    topic: 'orders',
    partition,
    offset: BigInt(offset),
    key: undefined,
    value: Buffer.from(`{"n":${offset}}`),
    headers: new Map([[Buffer.from('idem-message-id'), Buffer.from(`order-${partition}-${offset}`)]]),
    timestamp: 0n,
  }
}

const committed = (commit: PendingCommit | undefined) =>
  commit?.offsets.map(({ partition, offset }) => `${partition}@${offset}`)

/** The highest offset committed for `partition` by `commits` (-1 if none). */
function highest(commits: readonly PendingCommit[], partition: number): bigint {
  let best = -1n
  for (const commit of commits) {
    for (const o of commit.offsets) if (o.partition === partition && o.offset > best) best = o.offset
  }
  return best
}

describe('consumeKafka’s group membership and commits (fake client)', () => {
  const handles: KafkaHandle<{ n: number }>[] = []
  const clients: FakeClient[] = []
  let settled = 0

  afterEach(async () => {
    // The commit at close waits for those still in flight: answer them.
    for (const client of clients.splice(0)) for (const commit of client.commits) commit.resolve()
    for (const handle of handles.splice(0)) await Promise.race([handle.close(), sleep(1000)])
  })

  /** Offsets handled, by partition, in the order their handlers ran. */
  let handled: Map<number, number[]>

  async function start(client: FakeClient): Promise<KafkaHandle<{ n: number }>> {
    clients.push(client)
    settled = 0
    handled = new Map()
    const handle = await consumeKafka<{ n: number }>({
      on: {
        settled: () => {
          settled++
        },
      },
      client: client as unknown as KafkaConsumerClient,
      producer,
      topics: ['orders'],
      commitInterval: 5,
      onError: () => {},
      idem: new Idempotency({ store: new MemoryStore() }),
      handler: (_payload, ctx) => {
        const [, partition, offset] = ctx.key.split('-').map(Number) as [number, number, number]
        handled.set(partition, [...(handled.get(partition) ?? []), offset])
      },
    })
    handles.push(handle)
    return handle
  }

  it('fetches from the committed offsets with auto-commit off, read_committed, and a short fetch wait', async () => {
    const client = new FakeClient()
    await start(client)
    expect(client.consumed[0]).toMatchObject({
      topics: ['orders'],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
      isolationLevel: 1,
      maxWaitTime: 500,
    })
  })

  it('commits nothing from the start of a rebalance to its join, and then only partitions still owned', async () => {
    const client = new FakeClient()
    await start(client)
    const stream = client.streams[0] as FakeStream
    stream.emit('data', message(0, 0))
    stream.emit('data', message(1, 0))
    await until('the commit of both', () => highest(client.commits, 0) === 1n && highest(client.commits, 1) === 1n)

    client.emit('consumer:group:rebalance', { groupId: 'billing' })
    const before = client.commits.length
    stream.emit('data', message(0, 1))
    stream.emit('data', message(1, 1))
    await until('both messages handled', () => settled === 4)
    await sleep(50)
    expect(client.commits).toHaveLength(before)

    // The join: partition 1 went to another member. What is done of partition 0 is committed.
    client.join(2, [0])
    await until('the commit after the join', () => highest(client.commits, 0) === 2n)
    await sleep(50)
    expect(client.commits.slice(before).map(committed)).toEqual([['0@2']])
  })

  it('takes a partition the join revoked out of the commit in flight, which the client sends again', async () => {
    const client = new FakeClient()
    client.autoCommit = false
    await start(client)
    const stream = client.streams[0] as FakeStream
    stream.emit('data', message(0, 0))
    stream.emit('data', message(1, 0))
    await until('a commit of both partitions', () => client.commits.length === 1)
    const inFlight = client.commits[0] as PendingCommit
    expect(committed(inFlight)?.map((o) => o.split('@')[0])).toEqual(['0', '1'])
    // Refused for the old generation, the client rejoins and, before it sends the same offsets
    // again, reports the join: partition 1 is no longer ours.
    client.join(2, [0])
    expect(committed(inFlight)?.map((o) => o.split('@')[0])).toEqual(['0'])
    inFlight.resolve()
  })

  it('commits nothing while the client is in a generation it has not reported a join for', async () => {
    const client = new FakeClient()
    await start(client)
    client.generationId = 2 // the JoinGroup answered; the assignment is not known yet
    const stream = client.streams[0] as FakeStream
    stream.emit('data', message(0, 0))
    await until('the message handled', () => settled === 1)
    await sleep(50)
    expect(client.commits).toHaveLength(0)
    client.join(2, [0, 1])
    await until('the commit after the join', () => client.commits.length === 1)
    expect(committed(client.commits[0])).toEqual(['0@1'])
  })

  it('closes, and closes the stream, when close() comes while the stream is being opened again', async () => {
    const client = new FakeClient()
    const handle = await start(client)
    client.holdConsume = true
    client.streams[0]?.emit('error', new Error('the broker went away'))
    await until('the stream to be opened again', () => client.open !== undefined)
    const closing = handle.close()
    client.open?.()
    expect(await Promise.race([closing.then(() => 'closed'), sleep(2000).then(() => 'still closing')])).toBe('closed')
    expect(client.streams[1]?.closed).toBe(true)
  })

  it('reads a partition newly ours again from the committed offset when the stream starts past it', async () => {
    const client = new FakeClient()
    client.assignments = [{ topic: 'orders', partitions: [1] }]
    client.groupOffsets[0] = 5n // the last owner of partition 0 committed 5: 5, 6 and 7 are not done
    await start(client)
    client.join(2, [0, 1])
    const stale = client.streams[0] as FakeStream
    // Records of partition 0 fetched before it was ours again: the client's position jumped past 5.
    for (const offset of [8, 9]) stale.emit('data', message(0, offset))
    await until('the stream opened again, or a commit of partition 0', () => {
      return client.streams.length === 2 || highest(client.commits, 0) > 5n
    })
    expect(highest(client.commits, 0)).toBeLessThanOrEqual(5n)
    expect(stale.closed).toBe(true)
    stale.emit('data', message(0, 10)) // what the replaced stream still held: not handed over
    expect(highest(client.commits, 0)).toBeLessThanOrEqual(5n)
    expect(handled.get(0)).toBeUndefined()
    // The new stream reads from the committed offset.
    const fresh = client.streams[1] as FakeStream
    for (const offset of [5, 6, 7, 8, 9]) fresh.emit('data', message(0, offset))
    await until('the commit of partition 0', () => highest(client.commits, 0) === 10n)
    expect(handled.get(0)).toEqual([5, 6, 7, 8, 9])
    expect(handles[0]?.stats.restarts).toBe(0)
  })

  it('steps over a gap at the start of a partition newly ours once a read again confirms it', async () => {
    const client = new FakeClient()
    client.assignments = [{ topic: 'orders', partitions: [1] }]
    client.groupOffsets[0] = 5n // 5 and 6 are transaction markers: the first record is 7
    await start(client)
    client.join(2, [0, 1])
    ;(client.streams[0] as FakeStream).emit('data', message(0, 7))
    await until('the stream opened again', () => client.streams.length === 2)
    ;(client.streams[1] as FakeStream).emit('data', message(0, 7))
    ;(client.streams[1] as FakeStream).emit('data', message(0, 9))
    await until('the commit of partition 0', () => highest(client.commits, 0) === 10n)
    expect(handled.get(0)).toEqual([7, 9])
    expect(client.streams).toHaveLength(2)
  })

  it('drops records of a partition newly ours below the committed offset (done by its last owner)', async () => {
    const client = new FakeClient()
    client.assignments = [{ topic: 'orders', partitions: [1] }]
    client.groupOffsets[0] = 5n
    await start(client)
    client.join(2, [0, 1])
    const stream = client.streams[0] as FakeStream
    for (const offset of [3, 4, 5, 6]) stream.emit('data', message(0, offset))
    await until('the commit of partition 0', () => highest(client.commits, 0) === 7n)
    expect(handled.get(0)).toEqual([5, 6])
    expect(client.streams).toHaveLength(1)
  })
})
