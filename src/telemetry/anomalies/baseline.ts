// What a subject's normal looks like for one quantity (replays per window, their share of the
// calls): an exponentially weighted mean and standard deviation, learned one window at a time.
//
// Why an EWMA and not a sliding window: it holds three numbers per quantity however long its
// memory, so ten thousand subjects cost little, and a run of empty windows has a closed form
// (the mean decays geometrically) that `learnZeros` applies with a bounded number of steps.

/**
 * Weight of the newest window once the baseline is learned: a memory of about 40 windows (the
 * mean age of what it remembers is 1/ALPHA = 20 windows, 200 s with the default 10 s window).
 */
export const ALPHA = 0.05

/**
 * At most this many empty windows are applied one by one: after them the mean and the variance
 * are below 0.95^256 ≈ 2e-6 of what they were, so the rest of a long idle spell sets them to 0.
 */
export const MAX_CATCH_UP = 256

/**
 * An exponentially weighted mean and variance (West's update). The first windows are weighted
 * 1/n (a plain running mean and variance) until 1/n falls below ALPHA, so the warm-up windows all
 * count alike instead of the first one dominating.
 */
export class Baseline {
  mean = 0
  variance = 0

  /** `samples` windows learned (a skipped idle spell counts in full); a baseline may start as that many windows of 0. */
  constructor(public samples = 0) {}

  /** Learn one window's value. */
  learn(value: number): void {
    this.samples++
    const weight = this.samples * ALPHA < 1 ? 1 / this.samples : ALPHA
    const diff = value - this.mean
    const step = weight * diff
    this.mean += step
    this.variance = (1 - weight) * (this.variance + diff * step)
  }

  /** Learn `windows` windows of value 0 in O(min(windows, MAX_CATCH_UP)). */
  learnZeros(windows: number): void {
    const stepped = Math.min(windows, MAX_CATCH_UP)
    for (let i = 0; i < stepped; i++) this.learn(0)
    if (windows > stepped) {
      this.samples += windows - stepped
      this.mean = 0
      this.variance = 0
    }
  }

  get deviation(): number {
    return Math.sqrt(this.variance)
  }

  /** Forget everything: the next windows are learned afresh. */
  reset(): void {
    this.mean = 0
    this.variance = 0
    this.samples = 0
  }
}
