// The store as the core calls it once a probe that times store calls is attached: every call of
// the contract goes through `timed`, so the probe sees release, extend and the batch calls from
// the lease keeper, runMany and the completion batch. The two hot calls, run()'s claim and an
// execution's completion, bypass it and are timed in place (see Pipeline.store).

import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from '../contract/types.js'
import { type Probe, timed } from './probe.js'

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

  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    return timed(this.#probe, 'begin', () => this.#store.begin(id, fingerprint, leaseMs, ttlMs))
  }

  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    return timed(this.#probe, 'complete', () => this.#store.complete(id, token, result, ttlMs))
  }

  release(id: string, token: string): Promise<void> {
    return timed(this.#probe, 'release', () => this.#store.release(id, token))
  }

  extend(id: string, token: string, leaseMs: number): Promise<number> {
    return timed(this.#probe, 'extend', () => this.#store.extend(id, token, leaseMs))
  }

  get(id: string): Promise<IdempotencyRecord | null> {
    return timed(this.#probe, 'get', () => this.#store.get(id))
  }

  delete(id: string): Promise<boolean> {
    return timed(this.#probe, 'delete', () => this.#store.delete(id))
  }

  beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    return timed(this.#probe, 'beginMany', () => this.#store.beginMany(items, leaseMs, ttlMs))
  }

  completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    return timed(this.#probe, 'completeMany', () => this.#store.completeMany(items, ttlMs))
  }

  sweep(limit: number): Promise<number> {
    return timed(this.#probe, 'sweep', () => this.#store.sweep(limit))
  }

  close(): Promise<void> {
    return this.#store.close()
  }
}
