// A clock that moves only when told to: inject `clock.now` into a store to test leases and expiry.

/**
 * @example
 * ```ts
 * const clock = new ManualClock()
 * const store = new MemoryStore({ clock: clock.now })
 * clock.advance(30_000) // leases and retention lapse without waiting
 * ```
 */
export class ManualClock {
  #now: number

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start
  }

  /** Bound, so it can be passed as `clock: manual.now`. */
  readonly now = (): number => this.#now

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ManualClock cannot move by ${ms} ms`)
    this.#now += ms
  }
}
