// A clock that moves only when told to: inject `clock.now` into a store to test leases and expiry.

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
