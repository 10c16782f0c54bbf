import { describe, expect, it } from 'vitest'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import type { BeginResult, CompleteManyOutcome, IdempotencyStore } from '../../contract/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { recordId } from '../../core/key.js'
import { LeaseLostError, StoreUnavailableError } from '../../errors.js'
import { describeStoreConformance, ManualClock } from '../../testing/index.js'
import { MemoryStore } from '../memory/memory-store.js'
import { hash32, Placement, type Shard } from './placement.js'
import { ShardedStore, ShardUnavailableError } from './sharded-store.js'

const L = 1000
const T = 10_000

describeStoreConformance(
  {
    name: 'ShardedStore (3 MemoryStores)',
    create: () => {
      const clock = new ManualClock()
      const shards = ['a', 'b', 'c'].map((name) => ({ name, store: new MemoryStore({ clock: clock.now }) }))
      const store = new ShardedStore({ shards, ownsShards: true })
      return { store, advance: (ms) => clock.advance(ms), cleanup: () => store.close() }
    },
  },
  { describe, it },
)

// Migration mode must keep the whole contract: the old placement is read for moved ids (a third of
// them here), and every claim is still made on the new one.
describeStoreConformance(
  {
    name: 'ShardedStore (3 MemoryStores, migrating from 2)',
    create: () => {
      const clock = new ManualClock()
      const shards = ['a', 'b', 'c'].map((name) => ({ name, store: new MemoryStore({ clock: clock.now }) }))
      const store = new ShardedStore({
        shards,
        previous: { shards: shards.slice(0, 2), until: clock.now() + 1_000_000 },
        clock: clock.now,
        ownsShards: true,
      })
      return { store, advance: (ms) => clock.advance(ms), cleanup: () => store.close() }
    },
  },
  { describe, it },
)

const ids = Array.from({ length: 10_000 }, (_, i) => `scope:order-${i}`)
const memoryShards = (names: readonly string[], clock = new ManualClock()): Shard[] =>
  names.map((name) => ({ name, store: new MemoryStore({ clock: clock.now }) }))

/** An id that `a` places on `from` and `b` on `to`. */
function idMoving(a: Placement, b: Placement, from: string, to: string): string {
  const id = ids.find((candidate) => a.shardOf(candidate).name === from && b.shardOf(candidate).name === to)
  if (id === undefined) throw new Error(`no id moves from ${from} to ${to}`)
  return id
}

describe('placement', () => {
  it('is a pure function of the names: the order of the list does not matter', () => {
    const one = new Placement(memoryShards(['s1', 's2', 's3', 's4']))
    const two = new Placement(memoryShards(['s4', 's2', 's1', 's3']))
    for (const id of ids) expect(two.shardOf(id).name).toBe(one.shardOf(id).name)
  })

  it('keeps its hash: stored records depend on it', () => {
    // Changing the hash moves records between shards: this pins it.
    expect([hash32(''), hash32('a'), hash32('scope:order-1')]).toEqual([2872998923, 444641715, 708688024])
    expect(new Set(ids.map(hash32)).size).toBeGreaterThan(9990)
    const placement = new Placement(memoryShards(['s1', 's2', 's3']))
    expect(['x', 'y', 'z', 'order-42'].map((id) => placement.shardOf(id).name)).toEqual(['s3', 's1', 's3', 's2'])
  })

  it('spreads ids evenly: each of 5 shards gets its share within 5%', () => {
    const placement = new Placement(memoryShards(['s1', 's2', 's3', 's4', 's5']))
    const counts = new Map<string, number>()
    for (const id of ids) counts.set(placement.shardOf(id).name, (counts.get(placement.shardOf(id).name) ?? 0) + 1)
    expect(counts.size).toBe(5)
    for (const count of counts.values()) expect(Math.abs(count - 2000) / 2000).toBeLessThan(0.05)
  })

  it.each([1, 2, 3, 5, 9])('adding a shard to %i moves only ~1/(n+1) of the ids, all to the new shard', (n) => {
    const names = Array.from({ length: n }, (_, i) => `shard-${i}`)
    const before = new Placement(memoryShards(names))
    const after = new Placement(memoryShards([...names, 'added']))
    let moved = 0
    for (const id of ids) {
      const from = before.shardOf(id).name
      const to = after.shardOf(id).name
      if (from === to) continue
      moved++
      expect(to).toBe('added')
    }
    const expected = ids.length / (n + 1)
    expect(Math.abs(moved - expected) / expected).toBeLessThan(0.06)
  })

  it('removing a shard moves only the ids it owned', () => {
    const before = new Placement(memoryShards(['s1', 's2', 's3', 's4']))
    const after = new Placement(memoryShards(['s1', 's2', 's4']))
    for (const id of ids) {
      const from = before.shardOf(id).name
      if (from !== 's3') expect(after.shardOf(id).name).toBe(from)
    }
  })
})

describe('ShardedStore', () => {
  it('puts each record on its shard only, and answers batches in input order', async () => {
    const shards = memoryShards(['a', 'b', 'c'])
    const store = new ShardedStore({ shards })
    const items = ids.slice(0, 60).map((id) => ({ id, fingerprint: `fp-${id}` }))
    const begun = await store.beginMany(items, L, T)
    expect(begun.every((r) => r.outcome === 'acquired')).toBe(true)
    for (const { id } of items) {
      for (const shard of shards) {
        const record = await shard.store.get(id)
        expect(record !== null).toBe(shard.name === store.shardOf(id))
        if (record !== null) expect(record.fingerprint).toBe(`fp-${id}`)
      }
    }
    const tokens = begun.map((r) => (r as Extract<BeginResult, { outcome: 'acquired' }>).token)
    const done = await store.completeMany(
      items.map(({ id }, i) => ({ id, token: tokens[i] as string, result: `r-${id}` })),
      T,
    )
    expect(done).toEqual(items.map(() => 'completed'))
    const again = await store.beginMany(items, L, T)
    again.forEach((r, i) => {
      expect(r).toMatchObject({ outcome: 'completed', result: `r-${items[i]?.id}` })
    })
  })

  it('takes the smallest maxResultBytes of its shards', () => {
    const clock = new ManualClock()
    const store = new ShardedStore({
      shards: [
        { name: 'a', store: new MemoryStore({ clock: clock.now, maxResultBytes: 5000 }) },
        { name: 'b', store: new MemoryStore({ clock: clock.now, maxResultBytes: 300 }) },
      ],
    })
    expect(store.maxResultBytes).toBe(300)
  })

  it('leaves the shards open on close unless told it owns them', async () => {
    const shards = memoryShards(['a', 'b'])
    await new ShardedStore({ shards }).close()
    await expect(shards[0]?.store.begin('k', 'fp', L, T)).resolves.toMatchObject({ outcome: 'acquired' })
    await new ShardedStore({ shards, ownsShards: true }).close()
    for (const shard of shards) await expect(shard.store.begin('k2', 'fp', L, T)).rejects.toThrow(StoreUnavailableError)
  })

  describe('a shard that is down fails only its keys', () => {
    const setup = () => {
      const shards = memoryShards(['a', 'b', 'c'])
      const down = shards[1] as Shard
      const store = new ShardedStore({ shards })
      const items = ids.slice(0, 30).map((id) => ({ id, fingerprint: 'fp' }))
      const onDown = items.flatMap((item, i) => (store.shardOf(item.id) === down.name ? [i] : []))
      expect(onDown.length).toBeGreaterThan(0)
      expect(onDown.length).toBeLessThan(items.length)
      return { shards, down, store, items, onDown }
    }

    it('in begin: the error of its shard, the other shards unaffected', async () => {
      const { down, store, items, onDown } = setup()
      await down.store.close()
      const mine = items[onDown[0] as number]?.id as string
      const other = items.find((item) => store.shardOf(item.id) !== down.name)?.id as string
      await expect(store.begin(mine, 'fp', L, T)).rejects.toThrow(StoreUnavailableError)
      await expect(store.begin(other, 'fp', L, T)).resolves.toMatchObject({ outcome: 'acquired' })
    })

    it('in beginMany: an error listing its keys, with the other keys claimed', async () => {
      const { down, shards, store, items, onDown } = setup()
      await down.store.close()
      const error = await store.beginMany(items, L, T).then(
        () => expect.unreachable('beginMany should reject'),
        (e: unknown) => e as ShardUnavailableError<BeginResult>,
      )
      expect(error).toBeInstanceOf(ShardUnavailableError)
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect(error.failures.map((f) => f.index)).toEqual(onDown)
      expect(new Set(error.failures.map((f) => f.shard))).toEqual(new Set([down.name]))
      items.forEach((_, i) => {
        if (onDown.includes(i)) expect(error.results[i]).toBeUndefined()
        else expect(error.results[i]?.outcome).toBe('acquired')
      })
      // The claims answered are real: their shards hold them.
      const claimed = items.filter((_, i) => !onDown.includes(i))
      for (const { id } of claimed) {
        const shard = shards.find((s) => s.name === store.shardOf(id)) as Shard
        expect((await shard.store.get(id))?.state).toBe('in_progress')
      }
    })

    it('in completeMany: an error listing its keys, with the other keys completed', async () => {
      const { down, store, items, onDown } = setup()
      const begun = (await store.beginMany(items, L, T)) as Extract<BeginResult, { outcome: 'acquired' }>[]
      await down.store.close()
      const error = await store
        .completeMany(
          items.map((item, i) => ({ id: item.id, token: begun[i]?.token as string, result: 'r' })),
          T,
        )
        .then(
          () => expect.unreachable('completeMany should reject'),
          (e: unknown) => e as ShardUnavailableError<CompleteManyOutcome>,
        )
      expect(error.failures.map((f) => f.index)).toEqual(onDown)
      items.forEach((_, i) => {
        expect(error.results[i]).toBe(onDown.includes(i) ? undefined : 'completed')
      })
    })

    it('through Idempotency.runMany: a shard lost mid-batch fails its keys, the others complete', async () => {
      const { down, store } = setup()
      // A short lease: the core retries the lost shard's completions while the lease may be held.
      const idem = new Idempotency({ store, scope: 's', lease: 300 })
      const keys = ids.slice(0, 30)
      const lost = keys.map((key) => store.shardOf(recordId('s', key)) === down.name)
      expect(lost).toContain(true)
      // Every key is claimed, then the shard goes down before the outcomes are stored.
      const runs = idem.runMany(
        keys.map((key) => ({ key })),
        async (_, i) => {
          if (i === 0) await down.store.close()
          return `v${i}`
        },
      )
      const settled = await Promise.allSettled(runs)
      settled.forEach((outcome, i) => {
        if (lost[i]) expect(outcome.status).toBe('rejected')
        else expect(outcome).toMatchObject({ status: 'fulfilled', value: { status: 'executed', value: `v${i}` } })
      })
      const healthy = keys.filter((_, i) => !lost[i])
      const again = await Promise.all(
        idem.runMany(
          healthy.map((key) => ({ key })),
          () => 'ran twice',
        ),
      )
      expect(again.every((r) => r.status === 'replayed')).toBe(true)
    })

    it('through Idempotency.runMany: a shard down before the batch fails only its keys, the others run once', async () => {
      const { down, store } = setup()
      await down.store.close()
      const idem = new Idempotency({ store, scope: 's' })
      const keys = ids.slice(0, 30)
      const lost = keys.map((key) => store.shardOf(recordId('s', key)) === down.name)
      expect(lost).toContain(true)
      const ran: number[] = []
      const settled = await Promise.allSettled(
        idem.runMany(
          keys.map((key) => ({ key })),
          async (_, i) => {
            ran.push(i)
            return `v${i}`
          },
        ),
      )
      settled.forEach((outcome, i) => {
        if (lost[i]) expect(outcome).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) })
        else expect(outcome).toMatchObject({ status: 'fulfilled', value: { status: 'executed', value: `v${i}` } })
      })
      expect(ran.sort((a, b) => a - b)).toEqual(keys.flatMap((_, i) => (lost[i] ? [] : [i])))
    })

    it('completes again without LeaseLostError the items a failed completeMany did complete', async () => {
      const { down, store, items, onDown } = setup()
      const begun = (await store.beginMany(items, L, T)) as Extract<BeginResult, { outcome: 'acquired' }>[]
      await down.store.close()
      const batch = items.map((item, i) => ({ id: item.id, token: begun[i]?.token as string, result: 'r' }))
      await expect(store.completeMany(batch, T)).rejects.toThrow(ShardUnavailableError)
      // What Idem's core does then: complete each item on its own.
      for (const [i, item] of batch.entries()) {
        const again = store.complete(item.id, item.token, item.result, T)
        if (onDown.includes(i)) await expect(again).rejects.toThrow(StoreUnavailableError)
        else await expect(again).resolves.toBeUndefined()
      }
      // Only once: a second complete of the same claim is the store's answer again.
      const done = batch.findIndex((_, i) => !onDown.includes(i))
      const item = batch[done] as (typeof batch)[number]
      await expect(store.complete(item.id, item.token, item.result, T)).rejects.toThrow(LeaseLostError)
    })

    it('with a FaultyStore refusing single calls: other shards serve theirs', async () => {
      const clock = new ManualClock()
      const faulty = new FaultyStore(new MemoryStore({ clock: clock.now }))
      faulty.fail('begin')
      const store = new ShardedStore({
        shards: [
          { name: 'a', store: new MemoryStore({ clock: clock.now }) },
          { name: 'b', store: faulty },
        ],
      })
      const onB = ids.find((id) => store.shardOf(id) === 'b') as string
      const onA = ids.find((id) => store.shardOf(id) === 'a') as string
      await expect(store.begin(onB, 'fp', L, T)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
      await expect(store.begin(onA, 'fp', L, T)).resolves.toMatchObject({ outcome: 'acquired' })
    })
  })

  describe('migration mode', () => {
    const setup = () => {
      const clock = new ManualClock()
      const old = memoryShards(['a', 'b'], clock)
      const added = memoryShards(['c'], clock)
      const shards = [...old, ...added]
      const until = clock.now() + 5 * T
      const before = new ShardedStore({ shards: old })
      const after = new ShardedStore({ shards, previous: { shards: old, until }, clock: clock.now })
      const moved = idMoving(new Placement(old), new Placement(shards), 'a', 'c')
      const stays = ids.find((id) => new Placement(old).shardOf(id).name === new Placement(shards).shardOf(id).name)
      return { clock, old, added, before, after, moved, stays: stays as string, until }
    }

    it('recognises a duplicate of a record completed before the shard was added', async () => {
      const { before, after, moved, added } = setup()
      const first = await before.begin(moved, 'fp', L, T)
      if (first.outcome !== 'acquired') throw new Error('expected a claim')
      await before.complete(moved, first.token, '"done"', T)
      await expect(after.begin(moved, 'fp', L, T)).resolves.toMatchObject({ outcome: 'completed', result: '"done"' })
      await expect(after.beginMany([{ id: moved, fingerprint: 'fp' }], L, T)).resolves.toMatchObject([
        { outcome: 'completed', result: '"done"' },
      ])
      await expect(after.begin(moved, 'other', L, T)).resolves.toEqual({ outcome: 'mismatch', state: 'completed' })
      // Nothing was written on the new placement.
      expect(await added[0]?.store.get(moved)).toBeNull()
      expect((await after.get(moved))?.state).toBe('completed')
    })

    it('answers in_progress for a claim still held on the old placement, and its holder completes it', async () => {
      const { before, after, moved } = setup()
      const original = await before.begin(moved, 'fp', L, T)
      if (original.outcome !== 'acquired') throw new Error('expected a claim')
      // The duplicate arrives on a process already on the new configuration.
      await expect(after.begin(moved, 'fp', L, T)).resolves.toMatchObject({ outcome: 'in_progress' })
      await expect(after.beginMany([{ id: moved, fingerprint: 'fp' }], L, T)).resolves.toMatchObject([
        { outcome: 'in_progress' },
      ])
      // The original's holder may be on either configuration: both complete it where it is.
      await after.complete(moved, original.token, '"ok"', T)
      await expect(after.begin(moved, 'fp', L, T)).resolves.toMatchObject({ outcome: 'completed', result: '"ok"' })
    })

    it('completeMany reaches a claim made on the old placement', async () => {
      const { before, after, moved } = setup()
      const original = await before.begin(moved, 'fp', L, T)
      if (original.outcome !== 'acquired') throw new Error('expected a claim')
      await expect(after.completeMany([{ id: moved, token: original.token, result: '"ok"' }], T)).resolves.toEqual([
        'completed',
      ])
      await expect(after.completeMany([{ id: moved, token: 'stale', result: '"x"' }], T)).resolves.toEqual([
        'lease_lost',
      ])
      await expect(after.release(moved, 'stale')).rejects.toThrow(LeaseLostError)
    })

    it('takes over a lapsed claim of the old placement on the new one, fencing the old holder', async () => {
      const { clock, before, after, moved, old, added } = setup()
      const original = await before.begin(moved, 'fp', L, T)
      if (original.outcome !== 'acquired') throw new Error('expected a claim')
      clock.advance(L + 1)
      const takeover = await after.begin(moved, 'fp', L, T)
      expect(takeover).toMatchObject({ outcome: 'acquired', recovered: true })
      // The claim lives on the new placement only; the old one holds nothing any more.
      expect(await old[0]?.store.get(moved)).toBeNull()
      expect((await added[0]?.store.get(moved))?.state).toBe('in_progress')
      await expect(before.complete(moved, original.token, '"late"', T)).rejects.toThrow(LeaseLostError)
      await expect(after.complete(moved, original.token, '"late"', T)).rejects.toThrow(LeaseLostError)
      if (takeover.outcome === 'acquired') await after.complete(moved, takeover.token, '"new"', T)
      await expect(after.begin(moved, 'fp', L, T)).resolves.toMatchObject({ outcome: 'completed', result: '"new"' })
    })

    it('lets exactly one of racing duplicates claim a moved key', async () => {
      const { after, moved } = setup()
      const answers = await Promise.all(Array.from({ length: 20 }, () => after.begin(moved, 'fp', L, T)))
      expect(answers.filter((a) => a.outcome === 'acquired')).toHaveLength(1)
      expect(answers.filter((a) => a.outcome === 'in_progress')).toHaveLength(19)
    })

    it('reads only the new placement for ids that did not move', async () => {
      const clock = new ManualClock()
      const counted = memoryShards(['a', 'b'], clock).map((shard) => ({ ...shard, store: new Counting(shard.store) }))
      const shards = [...counted, ...memoryShards(['c'], clock)]
      const after = new ShardedStore({
        shards,
        previous: { shards: counted, until: clock.now() + T },
        clock: clock.now,
      })
      const stays = ids.filter((id) => new Placement(counted).shardOf(id).name === after.shardOf(id)).slice(0, 20)
      await after.beginMany(
        stays.map((id) => ({ id, fingerprint: 'fp' })),
        L,
        T,
      )
      const gets = () => counted.reduce((n, shard) => n + (shard.store as Counting).gets, 0)
      expect(gets()).toBe(0)
      // The control: a moved id is read on its old placement.
      const moved = ids.find((id) => new Placement(counted).shardOf(id).name !== after.shardOf(id)) as string
      await after.beginMany([{ id: moved, fingerprint: 'fp' }], L, T)
      expect(gets()).toBe(1)
    })

    it('stops consulting the old placement after `until`', async () => {
      const { clock, before, after, moved, until } = setup()
      const first = await before.begin(moved, 'fp', L, T)
      if (first.outcome !== 'acquired') throw new Error('expected a claim')
      await before.complete(moved, first.token, '"done"', 20 * T)
      expect(after.migrating).toBe(true)
      clock.advance(until - clock.now())
      expect(after.migrating).toBe(false)
      // The old record is still there (its ttl is longer than `until` allowed for): no longer seen.
      await expect(after.begin(moved, 'fp', L, T)).resolves.toMatchObject({ outcome: 'acquired' })
    })

    it('a down old placement fails only the moved keys', async () => {
      const { old, after, moved, stays } = setup()
      await old[0]?.store.close()
      const items = [moved, stays].map((id) => ({ id, fingerprint: 'fp' }))
      const error = (await after.beginMany(items, L, T).catch((e: unknown) => e)) as ShardUnavailableError<BeginResult>
      expect(error).toBeInstanceOf(ShardUnavailableError)
      expect(error.failures).toMatchObject([{ index: 0, id: moved, shard: 'a' }])
      // `stays` may itself live on `a` (down): only check when it does not.
      if (after.shardOf(stays) !== 'a') expect(error.results[1]?.outcome).toBe('acquired')
    })
  })

  describe('bad options', () => {
    const store = new MemoryStore()
    it.each<[string, unknown, RegExp]>([
      ['nothing', undefined, /ShardedStore needs \{ shards \}/],
      ['no shards', { shards: [] }, /ShardedStore needs \{ shards \}/],
      ['a typo', { shards: [{ name: 'a', store }], owns: true }, /unknown option "owns"/],
      ['a shard without a name', { shards: [{ store }] }, /shards\[0\]\.name must be a non-empty string/],
      ['a shard without a store', { shards: [{ name: 'a' }] }, /shards\[0\] \("a"\) needs a store/],
      [
        'two shards of one name',
        {
          shards: [
            { name: 'a', store },
            { name: 'a', store: new MemoryStore() },
          ],
        },
        /two shards are named "a"/,
      ],
      [
        'one store under two names',
        {
          shards: [
            { name: 'a', store },
            { name: 'b', store },
          ],
        },
        /"a" and "b" are the same store instance/,
      ],
      [
        'previous without until',
        { shards: [{ name: 'a', store }], previous: { shards: [{ name: 'b', store: new MemoryStore() }] } },
        /previous\.until must be a Date or ms/,
      ],
      [
        'previous with an invalid Date',
        { shards: [{ name: 'a', store }], previous: { shards: [{ name: 'b', store }], until: new Date('x') } },
        /previous\.until must be a Date or ms/,
      ],
      [
        'previous without shards',
        { shards: [{ name: 'a', store }], previous: { until: 1 } },
        /previous\.shards must be/,
      ],
      [
        'ownsShards not a boolean',
        { shards: [{ name: 'a', store }], ownsShards: 'yes' },
        /ownsShards must be true or false/,
      ],
    ])('refuses %s', (_, options, message) => {
      expect(() => new ShardedStore(options as never)).toThrow(message)
    })
  })
})

/** Counts the `get` calls a shard receives; everything else goes through. */
class Counting implements IdempotencyStore {
  gets = 0
  constructor(readonly inner: IdempotencyStore) {}
  begin: IdempotencyStore['begin'] = (...args) => this.inner.begin(...args)
  complete: IdempotencyStore['complete'] = (...args) => this.inner.complete(...args)
  release: IdempotencyStore['release'] = (...args) => this.inner.release(...args)
  extend: IdempotencyStore['extend'] = (...args) => this.inner.extend(...args)
  get: IdempotencyStore['get'] = (...args) => {
    this.gets++
    return this.inner.get(...args)
  }
  delete: IdempotencyStore['delete'] = (...args) => this.inner.delete(...args)
  beginMany: IdempotencyStore['beginMany'] = (...args) => this.inner.beginMany(...args)
  completeMany: IdempotencyStore['completeMany'] = (...args) => this.inner.completeMany(...args)
  sweep: IdempotencyStore['sweep'] = (...args) => this.inner.sweep(...args)
  close: IdempotencyStore['close'] = () => this.inner.close()
}
