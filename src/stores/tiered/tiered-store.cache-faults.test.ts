import { describe, expect, it } from 'vitest'
import { Idempotency } from '../../core/idempotency.js'
import { ManualClock } from '../../testing/manual-clock.js'
import { MemoryStore } from '../memory/memory-store.js'
import type { CompletedEntry, CompletedResultCache } from './result-cache.js'
import { TieredStore } from './tiered-store.js'

/** A cache in a Map that can be told to fail, and counts what it is asked. */
class MapCache implements CompletedResultCache {
  readonly entries = new Map<string, CompletedEntry>()
  failing = false
  reads = 0

  async getMany(ids: readonly string[]) {
    this.reads++
    if (this.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:7201')
    return ids.map((id) => this.entries.get(id) ?? null)
  }
  async putMany(entries: readonly { id: string; entry: CompletedEntry; ttlMs: number }[]) {
    if (this.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:7201')
    for (const { id, entry } of entries) this.entries.set(id, entry)
  }
  async delete(id: string) {
    this.entries.delete(id)
  }
  async close() {}
}

function setup() {
  const clock = new ManualClock()
  const primary = new MemoryStore({ clock: clock.now })
  const cache = new MapCache()
  const errors: string[] = []
  const store = new TieredStore({ primary, cache, onCacheError: (_e, operation) => errors.push(operation) })
  return { primary, cache, store, errors, idem: new Idempotency({ store }) }
}

describe('TieredStore', () => {
  it('answers a duplicate of a completed key from the cache', async () => {
    const { cache, idem, primary } = setup()
    await idem.run({ key: 'k' }, () => 'v')
    expect(cache.entries.size).toBe(1)
    await primary.close() // the primary cannot answer any more
    expect(await idem.run({ key: 'k' }, () => 'again')).toEqual({ status: 'replayed', value: 'v' })
  })

  it('never executes a completed key again when the cache has lost everything', async () => {
    const { cache, idem } = setup()
    await idem.run({ key: 'k' }, () => 'v')
    cache.entries.clear() // a Redis restart without persistence
    expect(await idem.run({ key: 'k' }, () => 'again')).toEqual({ status: 'replayed', value: 'v' })
    expect(cache.entries.size).toBe(1) // and the copy is back
  })

  it('goes on against the primary while the cache fails, and counts the failures', async () => {
    const { cache, idem, store, errors } = setup()
    cache.failing = true
    expect(await idem.run({ key: 'k' }, () => 'v')).toEqual({ status: 'executed', value: 'v' })
    expect(await idem.run({ key: 'k' }, () => 'again')).toEqual({ status: 'replayed', value: 'v' })
    // Each replay from the primary also tries to put the copy back.
    expect(errors).toEqual(['read', 'write', 'read', 'write'])
    expect(store.cacheErrors).toBe(4)
  })

  it('reports a fingerprint mismatch from the cache', async () => {
    const { idem } = setup()
    await idem.run({ key: 'k', payload: { a: 1 } }, () => 'v')
    await expect(idem.run({ key: 'k', payload: { a: 2 } }, () => 'x')).rejects.toMatchObject({
      code: 'FINGERPRINT_MISMATCH',
    })
  })

  it('drops the copy when a record is deleted, so the key can run again', async () => {
    const { cache, idem, store } = setup()
    await idem.run({ key: 'k' }, () => 'v')
    expect(await store.delete(idem.recordId('k'))).toBe(true)
    expect(cache.entries.size).toBe(0)
    expect(await idem.run({ key: 'k' }, () => 'second')).toEqual({ status: 'executed', value: 'second' })
  })

  it('answers a batch from both tiers, in order, with one cache read', async () => {
    const { cache, store } = setup()
    const first = await store.begin('done', 'fp', 1000, 10_000)
    if (first.outcome !== 'acquired') throw new Error('expected acquired')
    await store.complete('done', first.token, '"d"', 10_000)
    const reads = cache.reads
    const results = await store.beginMany(
      [
        { id: 'new', fingerprint: 'fp' },
        { id: 'done', fingerprint: 'fp' },
        { id: 'done', fingerprint: 'other' },
      ],
      1000,
      10_000,
    )
    expect(results.map((r) => r.outcome)).toEqual(['acquired', 'completed', 'mismatch'])
    expect(cache.reads).toBe(reads + 1)
  })
})
