// The in-process window store: one Map per window length, of entry → expiry time. Every entry of
// a Map lives exactly as long, so insertion order is expiry order: a sweep from the front stops at
// the first live entry, which keeps the cost O(1) amortised per event and the size at the events of
// one window (no generations of Sets rotated every window/k: those keep an entry up to window/k too
// long, and the window would no longer be exact).

import { entryKey, type WindowEntry, type WindowStore } from './window.js'

export interface MemoryWindowOptions {
  /** Milliseconds on a clock that never goes back. Default `performance.now` (not `Date.now`, which can). */
  now?: () => number
}

export class MemoryWindowStore implements WindowStore {
  readonly #now: () => number
  /** Per window length: entry key → expiry, in insertion (= expiry) order. */
  readonly #byWindow = new Map<number, Map<string, number>>()

  constructor(options: MemoryWindowOptions = {}) {
    this.#now = options.now ?? (() => performance.now())
  }

  /** Marks held now, expired ones swept first (for tests and metrics). */
  size(): number {
    const now = this.#now()
    let size = 0
    for (const marks of this.#byWindow.values()) {
      sweep(marks, now)
      size += marks.size
    }
    return size
  }

  mark(entries: readonly WindowEntry[], windowMs: number): Promise<boolean[]> {
    const now = this.#now()
    let marks = this.#byWindow.get(windowMs)
    if (marks === undefined) {
      marks = new Map()
      this.#byWindow.set(windowMs, marks)
    }
    sweep(marks, now)
    const repeats: boolean[] = []
    for (const entry of entries) {
      const key = entryKey(entry)
      // Swept just now, so a present entry is live: a repeat, whose first sight still counts (as SET NX does).
      if (marks.has(key)) {
        repeats.push(true)
      } else {
        marks.set(key, now + windowMs)
        repeats.push(false)
      }
    }
    return Promise.resolve(repeats)
  }

  forget(entries: readonly WindowEntry[]): Promise<void> {
    for (const marks of this.#byWindow.values()) for (const entry of entries) marks.delete(entryKey(entry))
    return Promise.resolve()
  }
}

function sweep(marks: Map<string, number>, now: number): void {
  // Deleting the entry being visited is safe in a Map iteration.
  for (const [key, expiresAt] of marks) {
    if (expiresAt > now) return
    marks.delete(key)
  }
}

/** A window store in this process's memory: for one consumer process, tests, or a single-node service. */
export function memoryWindow(options?: MemoryWindowOptions): MemoryWindowStore {
  return new MemoryWindowStore(options)
}
