// An in-process store: for tests, examples and single-process services. Records live in a Map
// and vanish with the process.

import { randomUUID } from 'node:crypto'
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
  IdempotencyStore,
} from '../../contract/types.js'
import {
  assertBeginArgs,
  assertBeginManyArgs,
  assertCompleteManyArgs,
  assertLimit,
  assertOwnerArgs,
  assertPositiveMs,
  assertRecordId,
  assertResult,
  DEFAULT_MAX_RESULT_BYTES,
  resultBytes,
} from '../../contract/validate.js'
import { StoreUnavailableError } from '../../errors.js'

export interface MemoryStoreOptions {
  /** Milliseconds since the epoch; inject one in tests to move time by hand. Default `Date.now`. */
  clock?: () => number
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
}

export class MemoryStore implements IdempotencyStore {
  readonly #records = new Map<string, IdempotencyRecord>()
  readonly #clock: () => number
  readonly #maxResultBytes: number
  #closed = false

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now
    this.#maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES
  }

  /** Records currently held, expired ones included until swept or touched. */
  get size(): number {
    return this.#records.size
  }

  async begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    this.#checkOpen()
    assertBeginArgs(id, fingerprint, leaseMs, ttlMs)
    return this.#begin(id, fingerprint, leaseMs, ttlMs, this.#clock())
  }

  async complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    assertPositiveMs('ttlMs', ttlMs)
    assertResult(result, this.#maxResultBytes, id)
    const now = this.#clock()
    const record = this.#records.get(id) ?? null
    if (!ownsClaim(record, token, now)) throw leaseLost(id, 'complete')
    this.#records.set(id, completedRecord(record, result, ttlMs, now))
  }

  async release(id: string, token: string): Promise<void> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    if (!ownsClaim(this.#records.get(id) ?? null, token, this.#clock())) throw leaseLost(id, 'release')
    this.#records.delete(id)
  }

  async extend(id: string, token: string, leaseMs: number): Promise<number> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    assertPositiveMs('leaseMs', leaseMs)
    const now = this.#clock()
    const record = this.#records.get(id) ?? null
    if (!ownsClaim(record, token, now)) throw leaseLost(id, 'extend')
    const extended = extendedRecord(record, leaseMs, now)
    this.#records.set(id, extended)
    return extended.leaseUntil ?? now + leaseMs
  }

  async get(id: string): Promise<IdempotencyRecord | null> {
    this.#checkOpen()
    assertRecordId(id)
    const record = this.#records.get(id)
    if (record === undefined || isExpired(record, this.#clock())) return null
    return { ...record }
  }

  async delete(id: string): Promise<boolean> {
    this.#checkOpen()
    assertRecordId(id)
    const record = this.#records.get(id)
    this.#records.delete(id)
    return record !== undefined && !isExpired(record, this.#clock())
  }

  async beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    this.#checkOpen()
    assertBeginManyArgs(items, leaseMs, ttlMs)
    const now = this.#clock()
    return items.map((item) => this.#begin(item.id, item.fingerprint, leaseMs, ttlMs, now))
  }

  async completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    this.#checkOpen()
    assertCompleteManyArgs(items, ttlMs)
    const now = this.#clock()
    return items.map((item) => {
      const record = this.#records.get(item.id) ?? null
      if (!ownsClaim(record, item.token, now)) return 'lease_lost'
      if (resultBytes(item.result) > this.#maxResultBytes) return 'too_large'
      this.#records.set(item.id, completedRecord(record, item.result, ttlMs, now))
      return 'completed'
    })
  }

  async sweep(limit: number): Promise<number> {
    this.#checkOpen()
    assertLimit(limit)
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

  async close(): Promise<void> {
    this.#closed = true
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

  #checkOpen(): void {
    if (this.#closed) throw new StoreUnavailableError('MemoryStore is closed')
  }
}
