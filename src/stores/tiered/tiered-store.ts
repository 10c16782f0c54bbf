// TieredStore: a fast cache of completed outcomes (Redis) in front of a durable primary store
// (SQL). The primary decides every claim and is the source of truth; the cache only answers
// duplicates of completed keys. A cache that restarts empty, or fails, costs a round trip to the
// primary, never a second execution.

import { performance } from 'node:perf_hooks'
import { BaseStore } from '../../contract/base-store.js'
import { readStoreOptions } from '../../contract/store-options.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from '../../contract/types.js'
import { type BloomFilterOptions, RotatingBloomFilter } from './bloom-filter.js'
import type { CompletedEntry, CompletedResultCache } from './result-cache.js'

const MAX_REMEMBERED_CLAIMS = 10_000

export interface TieredStoreOptions {
  /** The source of truth: a SQL store (PostgresStore, MysqlStore, SqliteStore). */
  primary: IdempotencyStore
  /** Copies of completed outcomes, e.g. `new RedisResultCache({ client: redis })`. */
  cache: CompletedResultCache
  /** Told of every cache failure; the operation itself goes on against the primary. */
  onCacheError?: (error: unknown, operation: 'read' | 'write' | 'delete') => void
  /**
   * Skip the cache read for ids this process has not begun before: a Bloom filter of the ids it
   * began, sized by `expectedItems` at `falsePositiveRate` (two generations, so it forgets). A
   * negative goes straight to the primary's begin; a false positive costs only the read it would
   * have made anyway. Pays off where most keys are new and duplicates come back to the process
   * that saw the first copy; a duplicate first run by another process is answered by the primary
   * instead of the cache (docs/tiered.md, "Bloom filter").
   */
  bloom?: Omit<BloomFilterOptions, 'now'>
}

const OPTIONS = {
  store: 'TieredStore',
  client: 'a durable primary store and a cache of completed outcomes (RedisResultCache)',
  required: ['primary', 'cache'],
  accepts: (primary: unknown) => typeof (primary as Partial<IdempotencyStore> | null)?.begin === 'function',
  known: ['primary', 'cache', 'onCacheError', 'bloom'],
}

/**
 * A cache of completed outcomes (Redis) in front of a durable primary store (SQL), which decides
 * every claim. Closing it closes both tiers.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { PostgresStore } from 'idem/postgres'
 * import { RedisResultCache, TieredStore } from 'idem/tiered'
 *
 * const store = new TieredStore({
 *   primary: new PostgresStore({ client: pool }),
 *   cache: new RedisResultCache({ client: redis }),
 * })
 * ```
 */
export class TieredStore extends BaseStore {
  readonly primary: IdempotencyStore
  readonly cache: CompletedResultCache
  /** The filter of ids begun here, with the `bloom` option (its `bytes` are its memory). */
  readonly bloom: RotatingBloomFilter | undefined
  readonly #onCacheError: (error: unknown, operation: 'read' | 'write' | 'delete') => void
  /** Claims this instance acquired, so that completing one needs no read to build its copy. */
  readonly #claims = new Map<string, { fingerprint: string; attempt: number }>()
  #cacheErrors = 0
  #skippedReads = 0

  constructor(options: TieredStoreOptions) {
    const o = readStoreOptions<TieredStoreOptions>(options, OPTIONS)
    // The primary keeps every result, so its limit is the tiered store's.
    super('TieredStore', o.primary.maxResultBytes)
    this.primary = o.primary
    this.cache = o.cache
    this.#onCacheError = o.onCacheError ?? (() => {})
    this.bloom = o.bloom === undefined ? undefined : new RotatingBloomFilter(o.bloom)
  }

  /** Cache operations that failed and were answered by the primary instead. */
  get cacheErrors(): number {
    return this.#cacheErrors
  }

  /** Cache reads the Bloom filter skipped: ids this process had certainly not begun. */
  get skippedCacheReads(): number {
    return this.#skippedReads
  }

  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const [cached] = this.#unseen(id) ? [null] : await this.#read([id])
    if (cached) return fromCache(cached, fingerprint)
    const result = await this.primary.begin(id, fingerprint, leaseMs, ttlMs)
    if (result.outcome === 'completed') await this.#readThrough([{ id, fingerprint, result }])
    if (result.outcome === 'acquired') this.#remember(result.token, fingerprint, result.attempt)
    return result
  }

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const startedAt = performance.now()
    await this.primary.complete(id, token, result, ttlMs)
    const entry = await this.#entryFor(id, token, result)
    // The primary stamped its record after startedAt, so the record lives at least until
    // startedAt + ttlMs; the copy gets what is left of that and never outlives the record.
    if (entry) await this.#write([{ id, entry, ttlMs: ttlMs - (performance.now() - startedAt) }])
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    await this.primary.release(id, token)
    this.#claims.delete(token)
  }

  protected doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    return this.primary.extend(id, token, leaseMs)
  }

  protected doGet(id: string): Promise<IdempotencyRecord | null> {
    return this.primary.get(id)
  }

  protected async doDelete(id: string): Promise<boolean> {
    // The copy goes first: a duplicate arriving in between then asks the primary.
    await this.cache.delete(id).catch((error: unknown) => this.#cacheFailed(error, 'delete'))
    return this.primary.delete(id)
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const cached = await this.#readSeen(items.map((item) => item.id))
    const misses = items.filter((_, i) => !cached[i])
    const fromPrimary = misses.length > 0 ? await this.primary.beginMany(misses, leaseMs, ttlMs) : []
    misses.forEach((item, i) => {
      const result = fromPrimary[i]
      if (result?.outcome === 'acquired') this.#remember(result.token, item.fingerprint, result.attempt)
    })
    const completed = misses
      .map((item, i) => ({ id: item.id, fingerprint: item.fingerprint, result: fromPrimary[i] as BeginResult }))
      .filter((m) => m.result.outcome === 'completed')
    await this.#readThrough(completed)
    let next = 0
    return items.map((item, i) => {
      const hit = cached[i]
      return hit ? fromCache(hit, item.fingerprint) : (fromPrimary[next++] as BeginResult)
    })
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    const startedAt = performance.now()
    const outcomes = await this.primary.completeMany(items, ttlMs)
    const done = items.filter((_, i) => outcomes[i] === 'completed')
    const entries = await Promise.all(done.map((item) => this.#entryFor(item.id, item.token, item.result)))
    const left = ttlMs - (performance.now() - startedAt)
    await this.#write(done.flatMap((item, i) => (entries[i] ? [{ id: item.id, entry: entries[i], ttlMs: left }] : [])))
    return outcomes
  }

  protected doSweep(limit: number): Promise<number> {
    return this.primary.sweep(limit)
  }

  protected async doClose(): Promise<void> {
    await Promise.all([this.primary.close(), this.cache.close().catch(() => {})])
  }

  /**
   * The copy of a claim just completed: from what this instance remembers of its claim, or, for a
   * claim acquired elsewhere, from the primary's record. `completedAt` is this process's clock.
   */
  async #entryFor(id: string, token: string, result: string): Promise<CompletedEntry | null> {
    const claim = this.#claims.get(token)
    if (claim !== undefined) {
      this.#claims.delete(token)
      return { fingerprint: claim.fingerprint, result, attempt: claim.attempt, completedAt: Date.now() }
    }
    const record = await this.primary.get(id).catch(() => null)
    return record?.state === 'completed' ? entryOf(record) : null
  }

  #remember(token: string, fingerprint: string, attempt: number): void {
    this.#claims.set(token, { fingerprint, attempt })
    // Claims whose worker died are never completed here; keep the map bounded.
    if (this.#claims.size > MAX_REMEMBERED_CLAIMS) {
      const oldest = this.#claims.keys().next()
      if (oldest.done !== true) this.#claims.delete(oldest.value)
    }
  }

  /** Copy completed outcomes the primary answered, for as long as the primary keeps them. */
  async #readThrough(items: { id: string; fingerprint: string; result: BeginResult }[]): Promise<void> {
    const entries = []
    for (const { id, fingerprint, result } of items) {
      // Without the remaining retention (an optional field), a copy could outlive the record.
      if (result.outcome !== 'completed' || result.expiresInMs === undefined) continue
      const { attempt, completedAt } = result
      entries.push({
        id,
        entry: { fingerprint, result: result.result, attempt, completedAt },
        ttlMs: result.expiresInMs,
      })
    }
    await this.#write(entries)
  }

  /**
   * With a filter: true when this process has certainly not begun `id` before (and notes that it
   * now has), so no copy it could find is worth a round trip. The copy may still exist, written
   * by another process: then the primary answers `completed`, which is the same answer one round
   * trip later. The primary's claim is never skipped.
   */
  #unseen(id: string): boolean {
    const bloom = this.bloom
    if (bloom === undefined) return false
    if (bloom.mightContain(id)) return false
    bloom.add(id)
    this.#skippedReads++
    return true
  }

  /** `#read` of the ids the filter may have seen; the others are misses without asking. */
  async #readSeen(ids: readonly string[]): Promise<(CompletedEntry | null)[]> {
    if (this.bloom === undefined) return this.#read(ids)
    const asked = ids.filter((id) => !this.#unseen(id))
    if (asked.length === ids.length) return this.#read(ids)
    const found = asked.length > 0 ? await this.#read(asked) : []
    const byId = new Map(asked.map((id, i) => [id, found[i] ?? null]))
    return ids.map((id) => byId.get(id) ?? null)
  }

  async #read(ids: readonly string[]): Promise<(CompletedEntry | null)[]> {
    try {
      return await this.cache.getMany(ids)
    } catch (error) {
      this.#cacheFailed(error, 'read')
      return ids.map(() => null)
    }
  }

  async #write(entries: { id: string; entry: CompletedEntry; ttlMs: number }[]): Promise<void> {
    if (entries.length === 0) return
    await this.cache.putMany(entries).catch((error: unknown) => this.#cacheFailed(error, 'write'))
  }

  #cacheFailed(error: unknown, operation: 'read' | 'write' | 'delete'): void {
    this.#cacheErrors++
    try {
      this.#onCacheError(error, operation)
    } catch {
      // an observer never breaks the store
    }
  }
}

function fromCache(entry: CompletedEntry, fingerprint: string): BeginResult {
  if (entry.fingerprint !== fingerprint) return { outcome: 'mismatch', state: 'completed' }
  return { outcome: 'completed', result: entry.result, attempt: entry.attempt, completedAt: entry.completedAt }
}

function entryOf(record: IdempotencyRecord): CompletedEntry {
  return {
    fingerprint: record.fingerprint,
    result: record.result ?? '',
    attempt: record.attempt,
    completedAt: record.updatedAt,
  }
}
