// The store as the core calls it once a probe that times store calls is attached: every call of
// the contract goes through `timed`, so the probe sees begin, complete, release, extend and the
// batch calls alike, from run, runMany, the lease keeper and the completion batch.

import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from '../contract/types.js'
import { type Probe, tell } from './probe.js'

export class ObservedStore implements IdempotencyStore {
  readonly #store: IdempotencyStore
  readonly #probe: Probe

  constructor(store: IdempotencyStore, probe: Probe) {
    this.#store = store
    this.#probe = probe
  }

  get maxResultBytes(): number | undefined {
    return this.#store.maxResultBytes
  }

  async begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.begin(id, fingerprint, leaseMs, ttlMs)
      tell(this.#probe, 'begin', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'begin', startedAt, performance.now(), error)
      throw error
    }
  }

  async complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.complete(id, token, result, ttlMs)
      tell(this.#probe, 'complete', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'complete', startedAt, performance.now(), error)
      throw error
    }
  }

  async release(id: string, token: string): Promise<void> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.release(id, token)
      tell(this.#probe, 'release', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'release', startedAt, performance.now(), error)
      throw error
    }
  }

  async extend(id: string, token: string, leaseMs: number): Promise<number> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.extend(id, token, leaseMs)
      tell(this.#probe, 'extend', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'extend', startedAt, performance.now(), error)
      throw error
    }
  }

  async get(id: string): Promise<IdempotencyRecord | null> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.get(id)
      tell(this.#probe, 'get', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'get', startedAt, performance.now(), error)
      throw error
    }
  }

  async delete(id: string): Promise<boolean> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.delete(id)
      tell(this.#probe, 'delete', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'delete', startedAt, performance.now(), error)
      throw error
    }
  }

  async beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.beginMany(items, leaseMs, ttlMs)
      tell(this.#probe, 'beginMany', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'beginMany', startedAt, performance.now(), error)
      throw error
    }
  }

  async completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.completeMany(items, ttlMs)
      tell(this.#probe, 'completeMany', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'completeMany', startedAt, performance.now(), error)
      throw error
    }
  }

  async sweep(limit: number): Promise<number> {
    const startedAt = performance.now()
    try {
      const value = await this.#store.sweep(limit)
      tell(this.#probe, 'sweep', startedAt, performance.now(), undefined)
      return value
    } catch (error) {
      tell(this.#probe, 'sweep', startedAt, performance.now(), error)
      throw error
    }
  }

  close(): Promise<void> {
    return this.#store.close()
  }
}
