import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { describeStoreConformance, ManualClock } from '../testing/index.js'
import type { BeginItem, CompleteItem } from './types.js'

/** A MemoryStore that merges begins and completions per tick, and counts what reaches its primitives. */
class BatchingMemoryStore extends MemoryStore {
  readonly calls = { begin: 0, beginMany: [] as number[], complete: 0, completeMany: [] as number[] }

  constructor(options: ConstructorParameters<typeof MemoryStore>[0] = {}) {
    super(options)
    this.batchPerTick({ begins: true, completes: true })
  }

  protected override doBegin(...args: Parameters<MemoryStore['begin']>) {
    this.calls.begin++
    return super.doBegin(...args)
  }
  protected override doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number) {
    this.calls.beginMany.push(items.length)
    return super.doBeginMany(items, leaseMs, ttlMs)
  }
  protected override doComplete(...args: Parameters<MemoryStore['complete']>) {
    this.calls.complete++
    return super.doComplete(...args)
  }
  protected override doCompleteMany(items: readonly CompleteItem[], ttlMs: number) {
    this.calls.completeMany.push(items.length)
    return super.doCompleteMany(items, ttlMs)
  }
}

describe('begins and completions merged per tick', () => {
  it('sends the begins of one tick as one batch per lease and retention while the store is busy', async () => {
    const store = new BatchingMemoryStore()
    const results = await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => store.begin(`k${i}`, 'fp', 1000, 5000)),
      store.begin('k0', 'fp', 1000, 5000),
      store.begin('other-lease', 'fp', 2000, 5000),
    ])
    // The first finds the store idle and goes at once; the others wait for the end of the tick.
    expect(store.calls.beginMany).toEqual([5])
    expect(store.calls.begin).toBe(2)
    // The same key twice in one tick: the second sees the first's claim, as two sequential calls would.
    expect(results.map((r) => r.outcome)).toEqual([...Array(5).fill('acquired'), 'in_progress', 'acquired'])
    await store.begin('alone', 'fp', 1000, 5000)
    expect(store.calls.begin).toBe(3)
  })

  it('rejects only the completion whose claim was lost, and completes the others', async () => {
    const store = new BatchingMemoryStore()
    const begun = await Promise.all(['a', 'b', 'c'].map((id) => store.begin(id, 'fp', 1000, 5000)))
    const tokens = begun.map((r, i) => (r.outcome === 'acquired' && i !== 1 ? r.token : 'stale'))
    const settled = await Promise.allSettled(
      ['a', 'b', 'c'].map((id, i) => store.complete(id, tokens[i] as string, `${i}`, 5000)),
    )
    expect(store.calls.complete).toBe(1)
    expect(store.calls.completeMany).toEqual([2])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'LEASE_LOST' })
    expect((await store.get('c'))?.state).toBe('completed')
  })

  it('checks arguments before a call waits: a bad call fails alone, its tick-mates go on', async () => {
    const store = new BatchingMemoryStore()
    const settled = await Promise.allSettled([
      store.begin('ok-1', 'fp', 1000, 5000),
      store.begin('ok-2', 'fp', 1000, 5000),
      store.begin('', 'fp', 1000, 5000),
      store.begin('ok-3', 'fp', 1000, 5000),
    ])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    expect(store.calls.beginMany).toEqual([2])
  })

  it('sends what waits before closing, and rejects what comes after', async () => {
    const store = new BatchingMemoryStore()
    const first = store.begin('first', 'fp', 1000, 5000)
    const waiting = store.begin('waiting', 'fp', 1000, 5000)
    await store.close()
    expect((await first).outcome).toBe('acquired')
    expect((await waiting).outcome).toBe('acquired')
    await expect(store.begin('late', 'fp', 1000, 5000)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
  })

  it('fails every call of a batch with the store error', async () => {
    class Failing extends BatchingMemoryStore {
      protected override doBeginMany(): never {
        throw new Error('down')
      }
    }
    const store = new Failing()
    const settled = await Promise.allSettled(['w', 'x', 'y'].map((id) => store.begin(id, 'fp', 1000, 5000)))
    // w went alone (the store was idle); x and y shared the batch that failed.
    expect(settled.map((s) => (s.status === 'rejected' ? (s.reason as Error).message : 'ok'))).toEqual([
      'ok',
      'down',
      'down',
    ])
  })
})

describeStoreConformance(
  {
    name: 'MemoryStore merging begins and completions per tick',
    create: () => {
      const clock = new ManualClock()
      return { store: new BatchingMemoryStore({ clock: clock.now }), advance: (ms) => clock.advance(ms) }
    },
  },
  { describe, it },
)
