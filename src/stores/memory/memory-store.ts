// An in-process store: for tests, examples and single-process services. Records live in a Map
// and vanish with the process.

import { randomUUID } from 'node:crypto'
import { BaseStore } from '../../contract/base-store.js'
import { readStoreOptions } from '../../contract/store-options.js'
import {
  completedRecord,
  decideBegin,
  extendedRecord,
  isExpired,
  leaseLost,
  ownsClaim,
} from '../../contract/transitions.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
} from '../../contract/types.js'

export interface MemoryStoreOptions {
  /** Milliseconds since the epoch; inject one in tests to move time by hand. Default `Date.now`. */
  clock?: () => number
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
}

/**
 * Records in a Map, in this process: for tests, examples and single-process services.
 *
 * @example
 * ```ts
 * import { Idempotency, MemoryStore } from 'idem'
 *
 * const idem = new Idempotency({ store: new MemoryStore() })
 * ```
 */
export class MemoryStore extends BaseStore {
  readonly #records = new Map<string, IdempotencyRecord>()
  readonly #clock: () => number

  constructor(options: MemoryStoreOptions = {}) {
    const o = readStoreOptions<MemoryStoreOptions>(options, {
      store: 'MemoryStore',
      known: ['clock', 'maxResultBytes'],
    })
    super('MemoryStore', o.maxResultBytes)
    this.#clock = o.clock ?? Date.now
  }

  /** Records currently held, expired ones included until swept or touched. */
  get size(): number {
    return this.#records.size
  }

  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    return this.#begin(id, fingerprint, leaseMs, ttlMs, this.#clock())
  }

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const now = this.#clock()
    const record = this.#records.get(id) ?? null
    if (!ownsClaim(record, token, now)) throw leaseLost(id, 'complete')
    this.#records.set(id, completedRecord(record, result, ttlMs, now))
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    if (!ownsClaim(this.#records.get(id) ?? null, token, this.#clock())) throw leaseLost(id, 'release')
    this.#records.delete(id)
  }

  protected async doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    const now = this.#clock()
    const record = this.#records.get(id) ?? null
    if (!ownsClaim(record, token, now)) throw leaseLost(id, 'extend')
    const extended = extendedRecord(record, leaseMs, now)
    this.#records.set(id, extended)
    return extended.leaseUntil ?? now + leaseMs
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    const record = this.#records.get(id)
    if (record === undefined || isExpired(record, this.#clock())) return null
    return { ...record }
  }

  protected async doDelete(id: string): Promise<boolean> {
    const record = this.#records.get(id)
    this.#records.delete(id)
    return record !== undefined && !isExpired(record, this.#clock())
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const now = this.#clock()
    return items.map((item) => this.#begin(item.id, item.fingerprint, leaseMs, ttlMs, now))
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    const now = this.#clock()
    return items.map((item) => {
      const record = this.#records.get(item.id) ?? null
      if (!ownsClaim(record, item.token, now)) return 'lease_lost'
      if (this.tooLarge(item.result)) return 'too_large'
      this.#records.set(item.id, completedRecord(record, item.result, ttlMs, now))
      return 'completed'
    })
  }

  protected async doSweep(limit: number): Promise<number> {
    const now = this.#clock()
    let removed = 0
    for (const [id, record] of this.#records) {
      if (removed >= limit) break
      if (isExpired(record, now)) {
        this.#records.delete(id)
        removed++
      }
    }
    return removed
  }

  protected async doClose(): Promise<void> {
    this.#records.clear()
  }

  #begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number, now: number): BeginResult {
    const { result, write } = decideBegin(
      this.#records.get(id) ?? null,
      id,
      fingerprint,
      leaseMs,
      ttlMs,
      now,
      randomUUID,
    )
    if (write !== null) this.#records.set(id, write)
    return result
  }
}
