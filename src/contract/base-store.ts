// What every store shares, written once: the argument checks of each operation, the closed state,
// and the result size limit. A backend extends BaseStore and writes only its primitives (the
// `do*` methods), which run once the arguments are known to be valid and the store open.

import { StoreUnavailableError } from '../errors.js'
import { positiveInteger } from './duration.js'
import { TickBatches, type TickBatching } from './tick-batches.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from './types.js'
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
} from './validate.js'

/**
 * The base of Idem's stores. Each public operation checks its arguments and the closed state,
 * then calls the matching primitive; a failed check rejects (it never throws synchronously). The
 * checks are plain comparisons, with no await and no allocation, so they cost the hot path
 * nothing measurable.
 *
 * @example
 * ```ts
 * class MyStore extends BaseStore {
 *   constructor() { super('MyStore') }
 *   protected async doBegin(id, fingerprint, leaseMs, ttlMs) { ... }
 *   // ... one primitive per operation
 * }
 * ```
 */
export abstract class BaseStore implements IdempotencyStore {
  /** Largest result `complete` accepts, in UTF-8 bytes (`completeMany` answers `too_large` above it). */
  readonly maxResultBytes: number
  readonly #name: string
  #closed = false
  /** Set by `batchPerTick`: the begins and completions a store merges per tick. */
  #batches: TickBatches | undefined
  #batchBegins = false
  #batchCompletes = false

  /** `name` names the store in messages; `maxResultBytes` is the option as given (default 1 MiB). */
  protected constructor(name: string, maxResultBytes?: number) {
    this.#name = name
    this.maxResultBytes =
      maxResultBytes === undefined ? DEFAULT_MAX_RESULT_BYTES : positiveInteger(maxResultBytes, 'maxResultBytes')
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    try {
      if (this.#closed) throw this.closedError()
      assertBeginArgs(id, fingerprint, leaseMs, ttlMs)
      if (this.#batchBegins) return (this.#batches as TickBatches).begin(id, fingerprint, leaseMs, ttlMs)
      return this.doBegin(id, fingerprint, leaseMs, ttlMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    try {
      if (this.#closed) throw this.closedError()
      assertOwnerArgs(id, token)
      assertPositiveMs('ttlMs', ttlMs)
      assertResult(result, this.maxResultBytes, id)
      if (this.#batchCompletes) return (this.#batches as TickBatches).complete(id, token, result, ttlMs)
      return this.doComplete(id, token, result, ttlMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  release(id: string, token: string): Promise<void> {
    try {
      if (this.#closed) throw this.closedError()
      assertOwnerArgs(id, token)
      return this.doRelease(id, token)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  extend(id: string, token: string, leaseMs: number): Promise<number> {
    try {
      if (this.#closed) throw this.closedError()
      assertOwnerArgs(id, token)
      assertPositiveMs('leaseMs', leaseMs)
      return this.doExtend(id, token, leaseMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  get(id: string): Promise<IdempotencyRecord | null> {
    try {
      if (this.#closed) throw this.closedError()
      assertRecordId(id)
      return this.doGet(id)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  delete(id: string): Promise<boolean> {
    try {
      if (this.#closed) throw this.closedError()
      assertRecordId(id)
      return this.doDelete(id)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    try {
      if (this.#closed) throw this.closedError()
      assertBeginManyArgs(items, leaseMs, ttlMs)
      return items.length === 0 ? Promise.resolve([]) : this.doBeginMany(items, leaseMs, ttlMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    try {
      if (this.#closed) throw this.closedError()
      assertCompleteManyArgs(items, ttlMs)
      return items.length === 0 ? Promise.resolve([]) : this.doCompleteMany(items, ttlMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  sweep(limit: number): Promise<number> {
    try {
      if (this.#closed) throw this.closedError()
      assertLimit(limit)
      return this.doSweep(limit)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Stop accepting operations (each then rejects with StoreUnavailableError), then release what the store owns. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // What waits for the end of this tick goes out before the store lets go of its client.
    this.#batches?.flush()
    await this.doClose()
  }

  /**
   * Merge the `begin` (and/or `complete`) calls made in one tick into one `doBeginMany`
   * (`doCompleteMany`), for a store whose batch costs about what one call does (tick-batches.ts).
   * A call alone in its tick still goes to `doBegin` (`doComplete`). Call it from the constructor.
   */
  protected batchPerTick(batching: TickBatching): void {
    this.#batchBegins = batching.begins
    this.#batchCompletes = batching.completes
    this.#batches ??= new TickBatches({
      begin: (id, fingerprint, leaseMs, ttlMs) => this.doBegin(id, fingerprint, leaseMs, ttlMs),
      beginMany: (items, leaseMs, ttlMs) => this.doBeginMany(items, leaseMs, ttlMs),
      complete: (id, token, result, ttlMs) => this.doComplete(id, token, result, ttlMs),
      completeMany: (items, ttlMs) => this.doCompleteMany(items, ttlMs),
    })
  }

  /** The error every operation rejects with once the store is closed. */
  protected closedError(): StoreUnavailableError {
    return new StoreUnavailableError(`${this.describe()} is closed: create a new store to go on`)
  }

  /** The store in messages: its class name, and where its records are when that helps. */
  protected describe(): string {
    return this.#name
  }

  /** True when `result` is over this store's limit (for `completeMany`, which answers `too_large` per item). */
  protected tooLarge(result: string): boolean {
    return resultBytes(result) > this.maxResultBytes
  }

  protected abstract doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult>
  /** `result` is already within `maxResultBytes`. */
  protected abstract doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void>
  protected abstract doRelease(id: string, token: string): Promise<void>
  protected abstract doExtend(id: string, token: string, leaseMs: number): Promise<number>
  protected abstract doGet(id: string): Promise<IdempotencyRecord | null>
  protected abstract doDelete(id: string): Promise<boolean>
  /** `items` is not empty. */
  protected abstract doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]>
  /** `items` is not empty; results over the limit are the primitive's to answer `too_large` (see `tooLarge`). */
  protected abstract doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]>
  protected abstract doSweep(limit: number): Promise<number>
  /** Release what the store owns (a client it made, its records); called once. */
  protected abstract doClose(): Promise<void>
}
