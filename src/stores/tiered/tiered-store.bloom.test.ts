import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { tieredOverSqlite } from '../../../test/support/stores/tiered/tiered-over-sqlite.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { recordId } from '../../core/key.js'
import { describeStoreConformance, ManualClock } from '../../testing/index.js'
import { MemoryStore } from '../memory/memory-store.js'
import type { CompletedEntry, CompletedResultCache } from './result-cache.js'
import { TieredStore } from './tiered-store.js'

/** A cache in a Map on a clock of the test's, expiring copies as Redis would; counts the ids it is asked for. */
class ClockedCache implements CompletedResultCache {
  readonly entries = new Map<string, { entry: CompletedEntry; expiresAt: number }>()
  readonly asked: string[] = []
  constructor(readonly now: () => number = () => 0) {}

  async getMany(ids: readonly string[]) {
    this.asked.push(...ids)
    return ids.map((id) => {
      const found = this.entries.get(id)
      return found !== undefined && found.expiresAt > this.now() ? found.entry : null
    })
  }
  async putMany(entries: readonly { id: string; entry: CompletedEntry; ttlMs: number }[]) {
    for (const { id, entry, ttlMs } of entries) this.entries.set(id, { entry, expiresAt: this.now() + ttlMs })
  }
  async delete(id: string) {
    this.entries.delete(id)
  }
  async close() {}
}

function setup(bloom = { expectedItems: 1000, falsePositiveRate: 0.01 }) {
  const primary = new FaultyStore(new MemoryStore()) // counts the primary's begins
  const cache = new ClockedCache()
  const store = new TieredStore({ primary, cache, bloom })
  return { primary, cache, store, idem: new Idempotency({ store, scope: 's' }) }
}

describe('TieredStore with a Bloom filter', () => {
  it('skips the cache read for a key this process never began; the claim still goes to the primary', async () => {
    const { cache, idem, primary, store } = setup()
    expect(await idem.run({ key: 'k' }, () => 'v')).toEqual({ status: 'executed', value: 'v' })
    expect(cache.asked).toEqual([]) // no read for a key never seen
    expect(primary.calls.begin).toBe(1) // ...but the claim was made
    expect(store.skippedCacheReads).toBe(1)
    expect(cache.entries.size).toBe(1) // and the copy written as before

    // The duplicate is in the filter: read from the cache, answered there, the primary not asked.
    expect(await idem.run({ key: 'k' }, () => 'again')).toEqual({ status: 'replayed', value: 'v' })
    expect(cache.asked).toEqual([recordId('s', 'k')])
    expect(primary.calls.begin).toBe(1)
    expect(store.skippedCacheReads).toBe(1)
  })

  it('costs a false positive only the read: the key is still claimed and run once', async () => {
    const { cache, idem, primary, store } = setup({ expectedItems: 64, falsePositiveRate: 0.2 })
    for (let i = 0; i < 64; i++) await idem.run({ key: `seen-${i}` }, () => i)
    // A key never run whose bits all happen to be set.
    let key = ''
    for (let i = 0; key === '' && i < 100_000; i++)
      if (store.bloom?.mightContain(recordId('s', `new-${i}`))) key = `new-${i}`
    expect(key).not.toBe('')
    const asked = cache.asked.length
    const begins = primary.calls.begin
    let runs = 0
    expect(await idem.run({ key }, () => ++runs)).toEqual({ status: 'executed', value: 1 })
    expect(cache.asked.slice(asked)).toEqual([recordId('s', key)]) // the read it cost (a miss)
    expect(primary.calls.begin).toBe(begins + 1)
  })

  it('replays a key another process completed: a negative here sends the duplicate to the primary', async () => {
    const primary = new FaultyStore(new MemoryStore())
    const cache = new ClockedCache()
    const bloom = { expectedItems: 1000, falsePositiveRate: 0.01 }
    const a = new Idempotency({ store: new TieredStore({ primary, cache, bloom }), scope: 's' })
    const b = new Idempotency({ store: new TieredStore({ primary, cache, bloom }), scope: 's' })
    let runs = 0
    await a.run({ key: 'k' }, () => ++runs)
    cache.asked.length = 0
    // b has never seen 'k': it does not ask the cache, and the primary answers with the outcome.
    expect(await b.run({ key: 'k' }, () => ++runs)).toEqual({ status: 'replayed', value: 1 })
    expect(cache.asked).toEqual([])
    expect(primary.calls.begin).toBe(2)
    expect(runs).toBe(1)
  })

  it('reads, in a batch, only the ids the filter may have seen, and answers in order', async () => {
    const { cache, idem, store } = setup()
    await idem.run({ key: 'old' }, () => 'o')
    cache.asked.length = 0
    const keys = ['fresh-1', 'old', 'fresh-2']
    const results = await Promise.all(
      idem.runMany(
        keys.map((key) => ({ key })),
        (_ctx, i) => `ran ${keys[i]}`,
      ),
    )
    expect(results).toEqual([
      { status: 'executed', value: 'ran fresh-1' },
      { status: 'replayed', value: 'o' },
      { status: 'executed', value: 'ran fresh-2' },
    ])
    expect(cache.asked).toEqual([recordId('s', 'old')])
    expect(store.skippedCacheReads).toBe(3) // old once, the two fresh ones now
  })

  it('refuses a bad filter size at construction', () => {
    const primary = new MemoryStore()
    const cache = new ClockedCache()
    expect(() => new TieredStore({ primary, cache, bloom: { expectedItems: 0, falsePositiveRate: 0.01 } })).toThrow(
      /bloom expectedItems must be a positive integer/,
    )
    expect(() => new TieredStore({ primary, cache, bloom: { expectedItems: 10, falsePositiveRate: 1 } })).toThrow(
      /bloom falsePositiveRate/,
    )
  })
})

// The whole contract with the filter on. A tiny filter that rotates every 8 ids and answers "maybe"
// often, so that the suite meets negatives, false positives and forgotten ids alike.
describeStoreConformance(
  {
    name: 'TieredStore with a Bloom filter (a clocked Map cache over MemoryStore)',
    create: () => {
      const clock = new ManualClock()
      const store = new TieredStore({
        primary: new MemoryStore({ clock: clock.now }),
        cache: new ClockedCache(clock.now),
        bloom: { expectedItems: 8, falsePositiveRate: 0.3 },
      })
      return { store, advance: (ms) => clock.advance(ms), cleanup: () => store.close() }
    },
  },
  { describe, it },
)

if (await requireService('Redis', SERVICES.Redis.port)) {
  const redis = new Redis({ port: SERVICES.Redis.port, maxRetriesPerRequest: 1 })
  afterAll(() => redis.disconnect())

  describeStoreConformance(
    {
      name: 'TieredStore with a Bloom filter (Redis cache over SQLite)',
      // Both tiers on real clocks: Redis expires copies by itself, so time cannot be faked.
      leaseMs: 300,
      ttlMs: 1300,
      create: () =>
        tieredOverSqlite(redis, 'idem_tiered_bloom', { bloom: { expectedItems: 1000, falsePositiveRate: 0.01 } }),
    },
    { describe, it },
  )
}
