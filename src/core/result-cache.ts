// A bounded LRU of completed outcomes, so that a replay can be served with zero round trips.
// Local to one process: a record deleted from the store stays replayable here until it expires.

import { positiveInteger } from '../contract/duration.js'

export interface CachedOutcome {
  fingerprint: string
  stored: string
  /** Local-clock instant after which the entry is dropped. */
  expiresAt: number
}

export class ResultCache {
  readonly #entries = new Map<string, CachedOutcome>()
  readonly #maxEntries: number
  readonly #maxTtlMs: number

  constructor(maxEntries: number, maxTtlMs: number) {
    this.#maxEntries = positiveInteger(maxEntries, 'cache.maxEntries')
    this.#maxTtlMs = maxTtlMs
  }

  get size(): number {
    return this.#entries.size
  }

  get(id: string, now: number): CachedOutcome | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.#entries.delete(id)
      return undefined
    }
    // Refresh recency: a Map iterates in insertion order, so the first entry is the least recent.
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    return entry
  }

  set(id: string, fingerprint: string, stored: string, ttlMs: number, now: number): void {
    this.#entries.delete(id)
    this.#entries.set(id, { fingerprint, stored, expiresAt: now + Math.min(ttlMs, this.#maxTtlMs) })
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }

  delete(id: string): void {
    this.#entries.delete(id)
  }

  clear(): void {
    this.#entries.clear()
  }
}
