// ShardedStore: one logical store over several stores (PostgreSQL databases or schemas, MySQL or
// MariaDB databases, ...). Each record lives on exactly one shard, chosen from its id by
// rendezvous hashing (placement.ts), so every guarantee of the store contract holds per record as
// it holds on that shard. Batches are split per shard and run in parallel.
//
// Migration mode (`previous`) lets a shard be added without losing deduplication: until the given
// instant, a claim for an id whose placement moved first reads the old placement and, when a record
// is there, lets that store answer. docs/sharded.md states the guarantees and the races.

import { BaseStore } from '../../contract/base-store.js'
import { PartialBatchError } from '../../contract/partial-batch.js'
import { readStoreOptions } from '../../contract/store-options.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from '../../contract/types.js'
import { LeaseLostError } from '../../errors.js'
import { Placement, type Shard } from './placement.js'

export type { Shard }

export interface ShardedStoreOptions {
  /** The shards, each `{ name, store }`. Placement hashes the names: keep a shard's name forever. */
  shards: readonly Shard[]
  /**
   * Migration mode, while a shard is being added or removed: the configuration the records were
   * written under, consulted for ids whose placement changed until `until` (a Date or ms since the
   * epoch). Set `until` past the moment every process runs the new configuration plus the longest
   * `ttlMs` of the records written before (docs/sharded.md, "Adding a shard").
   */
  previous?: { shards: readonly Shard[]; until: Date | number }
  /**
   * True when the shards are the ShardedStore's: `close()` then closes them. Default false: a store
   * you pass stays yours, as every client you pass to Idem does, and `close()` leaves it open.
   */
  ownsShards?: boolean
  /** Milliseconds since the epoch, compared with `previous.until`. Default `Date.now`; inject one in tests. */
  clock?: () => number
}

/** One key of a batch that failed because its shard did. */
export interface ShardItemFailure {
  /** Position of the item in the batch. */
  index: number
  id: string
  /** Name of the shard that failed. */
  shard: string
  error: unknown
}

/**
 * A batch (`beginMany`, `completeMany`) in which some shards failed. Only the keys of those shards
 * failed: `results` holds, at each position, the answer of the key's shard, or undefined where it
 * failed (listed in `failures`). Claims in `results` are held: complete or release them.
 */
export class ShardUnavailableError<R> extends PartialBatchError<R> {
  declare readonly failures: readonly ShardItemFailure[]

  constructor(results: readonly (R | undefined)[], failures: readonly ShardItemFailure[]) {
    const shards = [...new Set(failures.map((f) => f.shard))]
    super(
      `ShardedStore: shard ${shards.map((s) => JSON.stringify(s)).join(', ')} failed for ${failures.length} of ` +
        `${results.length} keys; the other keys' answers are in results`,
      results,
      failures,
    )
    this.name = 'ShardUnavailableError'
  }
}

const MAX_REMEMBERED_COMPLETIONS = 10_000

const OPTIONS = {
  store: 'ShardedStore',
  client: 'a list of shards, [{ name, store }], one or more',
  required: ['shards'],
  accepts: (shards: unknown) => Array.isArray(shards) && shards.length > 0,
  known: ['shards', 'previous', 'ownsShards', 'clock'],
}

/**
 * One logical store over several stores, each record on the shard its id hashes to (rendezvous
 * hashing over the shards' names). The shards stay yours unless `ownsShards` is true.
 *
 * @example
 * ```ts
 * import { PostgresStore } from 'idem/postgres'
 * import { ShardedStore } from 'idem/sharded'
 *
 * const store = new ShardedStore({
 *   shards: [
 *     { name: 'eu-1', store: new PostgresStore({ client: poolA }) },
 *     { name: 'eu-2', store: new PostgresStore({ client: poolB }) },
 *   ],
 * })
 * ```
 */
export class ShardedStore extends BaseStore {
  readonly #placement: Placement
  readonly #previous: Placement | undefined
  readonly #until: number
  readonly #owns: boolean
  readonly #clock: () => number
  /**
   * Claims a `completeMany` completed in a batch that then rejected (another shard failed), by
   * token. A caller that does not read ShardUnavailableError.results (Idem's core) completes each
   * item again with `complete`; for these, that call succeeds instead of answering LeaseLostError
   * for a claim that was in fact completed.
   */
  readonly #completedInFailedBatch = new Map<string, string>()

  constructor(options: ShardedStoreOptions) {
    const o = readStoreOptions<ShardedStoreOptions>(options, OPTIONS)
    const shards = checkShards(o.shards, 'shards')
    const previous = o.previous === undefined ? undefined : checkPrevious(o.previous)
    if (o.ownsShards !== undefined && typeof o.ownsShards !== 'boolean') {
      throw new TypeError(`ShardedStore option ownsShards must be true or false, got ${typeof o.ownsShards}`)
    }
    if (o.clock !== undefined && typeof o.clock !== 'function') {
      throw new TypeError('ShardedStore option clock must be a function returning ms since the epoch')
    }
    // A record may land on any shard, so the batch can keep only what every shard keeps.
    const limits = shards.flatMap((shard) =>
      shard.store.maxResultBytes === undefined ? [] : [shard.store.maxResultBytes],
    )
    super('ShardedStore', limits.length === 0 ? undefined : Math.min(...limits))
    this.#placement = new Placement(shards)
    this.#previous = previous === undefined ? undefined : new Placement(previous.shards)
    this.#until = previous?.until ?? 0
    this.#owns = o.ownsShards ?? false
    this.#clock = o.clock ?? Date.now
  }

  /** The shards, sorted by name. */
  get shards(): readonly Shard[] {
    return this.#placement.shards
  }

  /** True while the previous configuration is still consulted. */
  get migrating(): boolean {
    return this.#previous !== undefined && this.#clock() < this.#until
  }

  /** The name of the shard that owns `id` (in the current configuration). */
  shardOf(id: string): string {
    return this.#placement.shardOf(id).name
  }

  protected doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const shard = this.#placement.shardOf(id)
    const old = this.#moved(id, shard)
    if (old === undefined) return shard.store.begin(id, fingerprint, leaseMs, ttlMs)
    return this.#beginMoved(id, fingerprint, leaseMs, ttlMs, shard, old).catch((failure: unknown) => {
      throw failure instanceof Failed ? failure.error : failure
    })
  }

  protected doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    if (this.#completedInFailedBatch.get(token) === id) {
      this.#completedInFailedBatch.delete(token)
      return Promise.resolve()
    }
    return this.#owned(id, (store) => store.complete(id, token, result, ttlMs))
  }

  protected doRelease(id: string, token: string): Promise<void> {
    return this.#owned(id, (store) => store.release(id, token))
  }

  protected doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    return this.#owned(id, (store) => store.extend(id, token, leaseMs))
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    const shard = this.#placement.shardOf(id)
    const record = await shard.store.get(id)
    const old = record === null ? this.#moved(id, shard) : undefined
    return old === undefined ? record : old.store.get(id)
  }

  protected async doDelete(id: string): Promise<boolean> {
    const shard = this.#placement.shardOf(id)
    const old = this.#moved(id, shard)
    // Both placements: a record left on the old one would otherwise still answer duplicates.
    const deleted = await Promise.all([shard.store.delete(id), old?.store.delete(id) ?? false])
    return deleted[0] || deleted[1]
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const results: (BeginResult | undefined)[] = new Array(items.length)
    const failures: ShardItemFailure[] = []
    const groups = new Map<Shard, number[]>()
    const moved: Promise<void>[] = []
    items.forEach((item, index) => {
      const shard = this.#placement.shardOf(item.id)
      const old = this.#moved(item.id, shard)
      if (old === undefined) {
        groupInto(groups, shard, index)
        return
      }
      // Moved ids are about 1/(n+1) of a batch, and only while migrating: one call each is enough.
      moved.push(
        this.#beginMoved(item.id, item.fingerprint, leaseMs, ttlMs, shard, old).then(
          (result) => {
            results[index] = result
          },
          (failure: unknown) => {
            const { shard: name, error } = failure instanceof Failed ? failure : { shard: shard.name, error: failure }
            failures.push({ index, id: item.id, shard: name, error })
          },
        ),
      )
    })
    const batches = [...groups].map(async ([shard, indexes]) => {
      try {
        const answers = await shard.store.beginMany(
          indexes.map((i) => items[i] as BeginItem),
          leaseMs,
          ttlMs,
        )
        indexes.forEach((i, position) => {
          results[i] = answers[position]
        })
      } catch (error) {
        for (const index of indexes)
          failures.push({ index, id: (items[index] as BeginItem).id, shard: shard.name, error })
      }
    })
    await Promise.all([...batches, ...moved])
    return settled(results, failures)
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    const outcomes: (CompleteManyOutcome | undefined)[] = new Array(items.length)
    const failures: ShardItemFailure[] = []
    const groups = new Map<Shard, number[]>()
    items.forEach((item, index) => {
      groupInto(groups, this.#placement.shardOf(item.id), index)
    })
    await Promise.all(
      [...groups].map(async ([shard, indexes]) => {
        try {
          const answers = await shard.store.completeMany(
            indexes.map((i) => items[i] as CompleteItem),
            ttlMs,
          )
          indexes.forEach((i, position) => {
            outcomes[i] = answers[position]
          })
        } catch (error) {
          for (const index of indexes)
            failures.push({ index, id: (items[index] as CompleteItem).id, shard: shard.name, error })
        }
      }),
    )
    await this.#completeLostOnOld(items, outcomes, ttlMs)
    if (failures.length > 0) this.#rememberCompleted(items, outcomes)
    return settled(outcomes, failures)
  }

  protected async doSweep(limit: number): Promise<number> {
    // Every distinct store, those only in the previous configuration too: their records age out
    // there and still need sweeping. One that fails does not stop the others.
    let left = limit
    let failure: unknown
    let failed = false
    for (const store of this.#stores()) {
      if (left === 0) break
      try {
        left -= await store.sweep(left)
      } catch (error) {
        failure ??= error
        failed = true
      }
    }
    if (failed && left === limit) throw failure
    return limit - left
  }

  protected async doClose(): Promise<void> {
    if (!this.#owns) return
    const closed = await Promise.allSettled(this.#stores().map((store) => store.close()))
    const failed = closed.find((c): c is PromiseRejectedResult => c.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  /** The shard of the previous configuration that owned `id`, when migrating and it differs from `shard`. */
  #moved(id: string, shard: Shard): Shard | undefined {
    if (this.#previous === undefined || this.#clock() >= this.#until) return undefined
    const old = this.#previous.shardOf(id)
    return old.name === shard.name ? undefined : old
  }

  /**
   * A claim for an id whose placement moved. A record on the old placement answers as that store
   * would; the claim itself is always made on the new placement, so that no record is written
   * where `until` stops looking.
   */
  async #beginMoved(
    id: string,
    fingerprint: string,
    leaseMs: number,
    ttlMs: number,
    shard: Shard,
    old: Shard,
  ): Promise<BeginResult> {
    const onOld = <T>(call: () => Promise<T>) => failedOn(old.name, call)
    const record = await onOld(() => old.store.get(id))
    let recovered = false
    if (record !== null) {
      // Let the old store judge the record on its own clock: completed, mismatch, a live lease, or
      // a lapsed one to take over. Only a takeover (or a record that vanished since the read)
      // acquires there; that claim is dropped at once and remade on the new placement, so that the
      // old placement gains no record that would outlive `until`.
      const answer = await onOld(() => old.store.begin(id, fingerprint, leaseMs, ttlMs))
      if (answer.outcome !== 'acquired') return answer
      await onOld(() => old.store.release(id, answer.token))
      recovered = answer.recovered
    }
    const claimed = await failedOn(shard.name, () => shard.store.begin(id, fingerprint, leaseMs, ttlMs))
    return recovered && claimed.outcome === 'acquired' ? { ...claimed, recovered: true } : claimed
  }

  /**
   * complete/release/extend go to the id's shard. While migrating, a token that shard does not know
   * may be a claim made on the old placement by a process still on the previous configuration:
   * the old placement is then asked, and the first LeaseLostError stands when it does not know it
   * either.
   */
  async #owned<T>(id: string, call: (store: IdempotencyStore) => Promise<T>): Promise<T> {
    const shard = this.#placement.shardOf(id)
    try {
      return await call(shard.store)
    } catch (error) {
      const old = error instanceof LeaseLostError ? this.#moved(id, shard) : undefined
      if (old === undefined) throw error
      try {
        return await call(old.store)
      } catch (second) {
        throw second instanceof LeaseLostError ? error : second
      }
    }
  }

  /** completeMany's `lease_lost` items, while migrating: try the old placement (see #owned). */
  async #completeLostOnOld(
    items: readonly CompleteItem[],
    outcomes: (CompleteManyOutcome | undefined)[],
    ttlMs: number,
  ): Promise<void> {
    const groups = new Map<Shard, number[]>()
    outcomes.forEach((outcome, index) => {
      if (outcome !== 'lease_lost') return
      const id = (items[index] as CompleteItem).id
      const old = this.#moved(id, this.#placement.shardOf(id))
      if (old !== undefined) groupInto(groups, old, index)
    })
    await Promise.all(
      [...groups].map(async ([old, indexes]) => {
        const answers = await old.store
          .completeMany(
            indexes.map((i) => items[i] as CompleteItem),
            ttlMs,
          )
          // The new placement's answer (lease_lost) stands when the old one cannot say.
          .catch(() => [])
        indexes.forEach((i, position) => {
          if (answers[position] === 'completed') outcomes[i] = 'completed'
        })
      }),
    )
  }

  #rememberCompleted(items: readonly CompleteItem[], outcomes: readonly (CompleteManyOutcome | undefined)[]): void {
    items.forEach((item, i) => {
      if (outcomes[i] === 'completed') this.#completedInFailedBatch.set(item.token, item.id)
    })
    // A caller that never completes again would grow the map: keep the newest only.
    for (const token of this.#completedInFailedBatch.keys()) {
      if (this.#completedInFailedBatch.size <= MAX_REMEMBERED_COMPLETIONS) break
      this.#completedInFailedBatch.delete(token)
    }
  }

  #stores(): IdempotencyStore[] {
    const all = [...this.#placement.shards, ...(this.#previous?.shards ?? [])]
    return [...new Set(all.map((shard) => shard.store))]
  }
}

/** An error tagged with the shard it came from, inside #beginMoved (which talks to two shards). */
class Failed {
  constructor(
    readonly shard: string,
    readonly error: unknown,
  ) {}
}

async function failedOn<T>(shard: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw new Failed(shard, error)
  }
}

function groupInto(groups: Map<Shard, number[]>, shard: Shard, index: number): void {
  const list = groups.get(shard)
  if (list === undefined) groups.set(shard, [index])
  else list.push(index)
}

function settled<R>(results: (R | undefined)[], failures: ShardItemFailure[]): R[] {
  if (failures.length === 0) return results as R[]
  failures.sort((a, b) => a.index - b.index)
  throw new ShardUnavailableError(results, failures)
}

function checkShards(value: unknown, what: string): Shard[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(`ShardedStore ${what} must be a non-empty array of { name, store }`)
  }
  const names = new Set<string>()
  const stores = new Map<unknown, string>()
  return value.map((entry: unknown, i) => {
    const shard = entry as Partial<Shard> | null
    if (typeof shard !== 'object' || shard === null) {
      throw new TypeError(`ShardedStore ${what}[${i}] must be { name, store }`)
    }
    const { name, store } = shard
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`ShardedStore ${what}[${i}].name must be a non-empty string (placement hashes it)`)
    }
    if (typeof (store as Partial<IdempotencyStore> | undefined)?.begin !== 'function') {
      throw new TypeError(`ShardedStore ${what}[${i}] ("${name}") needs a store: an IdempotencyStore`)
    }
    if (names.has(name)) throw new TypeError(`ShardedStore ${what}: two shards are named "${name}"`)
    const other = stores.get(store)
    if (other !== undefined) {
      throw new TypeError(`ShardedStore ${what}: shards "${other}" and "${name}" are the same store instance`)
    }
    names.add(name)
    stores.set(store, name)
    return { name, store: store as IdempotencyStore }
  })
}

function checkPrevious(value: unknown): { shards: Shard[]; until: number } {
  if (typeof value !== 'object' || value === null) {
    throw new TypeError('ShardedStore option previous must be { shards, until }')
  }
  const { shards, until } = value as { shards?: unknown; until?: unknown }
  const ms = until instanceof Date ? until.getTime() : until
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new TypeError(
      'ShardedStore option previous.until must be a Date or ms since the epoch: the instant after which ' +
        'the previous shards are no longer consulted (past the longest ttl of the records written before)',
    )
  }
  return { shards: checkShards(shards, 'previous.shards'), until: ms }
}
