// The shape of the soak traffic: a seeded random source (a run can be replayed with its seed), the
// bounded ring of recent keys that duplicates are drawn from, and the pacer that keeps a steady
// rate without ever queueing more than the run can carry.

/** mulberry32: a small, fast, seeded PRNG; quality is ample for choosing which request repeats. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What fraction of operations are duplicates, and how. */
export interface DuplicateMix {
  /** A new key sent twice at once (both in flight together). */
  concurrent: number
  /** An earlier key sent again, drawn from the keys of the last `windowMs`. */
  sequential: number
  /** How far back a sequential duplicate reaches. Far below the record ttl, so every duplicate must replay. */
  windowMs: number
}

export const DEFAULT_MIX: DuplicateMix = { concurrent: 0.05, sequential: 0.2, windowMs: 5000 }

/**
 * The last `capacity` keys sent, each with what a duplicate must repeat. A fixed ring, so the
 * harness's own memory stays flat however long the run.
 */
export class RecentKeys<T extends { at: number }> {
  readonly #ring: (T | undefined)[]
  #next = 0

  constructor(capacity: number) {
    this.#ring = new Array(capacity).fill(undefined)
  }

  add(entry: T): void {
    this.#ring[this.#next] = entry
    this.#next = (this.#next + 1) % this.#ring.length
  }

  /** A random entry younger than `maxAgeMs`, or undefined (then the caller sends a new key). */
  pick(random: () => number, now: number, maxAgeMs: number): T | undefined {
    const entry = this.#ring[Math.floor(random() * this.#ring.length)]
    return entry !== undefined && now - entry.at <= maxAgeMs ? entry : undefined
  }
}

/** What `startDuplicateTraffic` needs of a source: its ledger and how to make and send an operation. */
export interface DuplicateTrafficOptions<T extends { key: string; at: number }> {
  rate: number
  mix: DuplicateMix
  random: () => number
  /** Counts in flight, shed and new keys (the soak's `Ledger`). */
  ledger: { readonly inFlight: number; shed: number; newKey(key: string, now: number): void }
  /** More in flight than this and an operation due is shed (counted) rather than queued. */
  maxInFlight: number
  /** A new key's operation (its key numbered by `seq`); recorded as new and kept for duplicates here. */
  make: (seq: number, now: number) => T
  send: (entry: T) => void
}

/**
 * Steady traffic with duplicates: per operation due, a new key sent twice at once (`concurrent`),
 * a key of the last 512 again (`sequential`, if young enough), or a new key; shed when too much
 * is in flight.
 */
export function startDuplicateTraffic<T extends { key: string; at: number }>(
  options: DuplicateTrafficOptions<T>,
): { stop(): void } {
  const { mix, ledger, random } = options
  const recent = new RecentKeys<T>(512)
  let seq = 0
  const fresh = (now: number): T => {
    const entry = options.make(++seq, now)
    ledger.newKey(entry.key, now)
    recent.add(entry)
    return entry
  }
  return startPacer({
    rate: options.rate,
    fire: () => {
      if (ledger.inFlight >= options.maxInFlight) {
        ledger.shed++
        return
      }
      const now = Date.now()
      const r = random()
      if (r < mix.concurrent) {
        const entry = fresh(now)
        options.send(entry)
        options.send(entry)
        return
      }
      const again = r < mix.concurrent + mix.sequential
      options.send((again && recent.pick(random, now, mix.windowMs)) || fresh(now))
    },
  })
}

export interface PacerOptions {
  /** Operations per second. */
  rate: number
  /** Called once per operation due. */
  fire: () => void
  /** Tick of the pacer, ms. Default 20. */
  tickMs?: number
}

/**
 * Fires `rate` operations per second, spread over ticks. After a stall (a GC, a busy machine) it
 * catches up by at most one second's worth, so a long stall is not followed by a flood.
 */
export function startPacer(options: PacerOptions): { stop(): void } {
  const started = performance.now()
  let fired = 0
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * options.rate)
    if (due - fired > options.rate) fired = due - options.rate
    for (; fired < due; fired++) options.fire()
  }, options.tickMs ?? 20)
  return { stop: () => clearInterval(timer) }
}
