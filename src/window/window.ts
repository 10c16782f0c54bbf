// Time-window dedup (docs/window.md): "was (source, id) seen in the last `window`?", answered and
// marked in one atomic step per event, so that of two consumers seeing the same id at once exactly
// one is told "new". A store keeps each mark for exactly the window, so its size is bounded by the
// events of one window, not by the number of messages ever seen.

import { type Duration, toMs } from '../contract/duration.js'

/** One event: where it came from (a device, a topic, a tenant) and its id there. */
export interface WindowEntry {
  readonly source: string
  readonly id: string
}

/** Where marks live: `memoryWindow()` (one process) or `redisWindow()` (shared by consumers). */
export interface WindowStore {
  /**
   * Mark every entry seen for `windowMs` unless it already is; answer, in order, true where it
   * already was (a repeat). Atomic per entry; a repeat within one call counts as a repeat.
   */
  mark(entries: readonly WindowEntry[], windowMs: number): Promise<boolean[]>
  /** Drop the marks (an event whose handling failed must not be dropped when it comes again). */
  forget(entries: readonly WindowEntry[]): Promise<void>
}

export interface DedupWindowOptions {
  store: WindowStore
  /** How long a repeat is recognised after the first sight: ms or '10m'. */
  window: Duration
}

/**
 * Drops repeats of (source, id) seen within the window, exactly: a repeat inside the window is
 * always reported, an event past it never is.
 *
 * @example
 * ```ts
 * const window = new DedupWindow({ store: memoryWindow(), window: '10m' })
 * if (await window.seen('sensor-7', reading.id)) return // a repeat: drop it
 * ```
 */
export class DedupWindow {
  readonly store: WindowStore
  readonly windowMs: number

  constructor(options: DedupWindowOptions) {
    if (options === null || typeof options !== 'object' || typeof options.store?.mark !== 'function') {
      throw new TypeError('DedupWindow needs { store: memoryWindow() | redisWindow({ client }), window: "10m" }')
    }
    this.store = options.store
    this.windowMs = toMs(options.window, 'window')
  }

  /** True when (source, id) was seen within the window (drop it); else marks it and answers false. */
  seen(source: string, id: string): Promise<boolean> {
    return this.seenMany([{ source, id }]).then((repeats) => repeats[0] === true)
  }

  /** `seen` for a batch, in one store round trip; answers in order. */
  seenMany(entries: readonly WindowEntry[]): Promise<boolean[]> {
    try {
      for (const entry of entries) check(entry)
    } catch (error) {
      return Promise.reject(error)
    }
    if (entries.length === 0) return Promise.resolve([])
    return this.store.mark(entries, this.windowMs)
  }

  /** Forget (source, id): its next sight counts as new. */
  forget(source: string, id: string): Promise<void> {
    try {
      check({ source, id })
    } catch (error) {
      return Promise.reject(error)
    }
    return this.store.forget([{ source, id }])
  }
}

function check(entry: WindowEntry): void {
  if (typeof entry?.source !== 'string' || typeof entry.id !== 'string' || entry.id === '') {
    throw new TypeError('a window entry needs a string source and a non-empty string id')
  }
}

/**
 * One string per entry that no other (source, id) pair shares: the source's length goes first, so
 * that ("a:b", "c") and ("a", "b:c") stay apart whatever characters the two contain.
 */
export function entryKey(entry: WindowEntry): string {
  return `${entry.source.length}:${entry.source}:${entry.id}`
}
