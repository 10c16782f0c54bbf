// One histogram series as plain numbers, filled on the hot path: a bucket count per upper bound,
// a sum and a count. Observing is a short scan and three additions; prom-client's own observe
// (label validation, hashing) costs far more, so the exposition is built from these at scrape.

export class HistogramCells {
  /** Upper bounds, increasing; shared by every series of a metric. */
  readonly bounds: Float64Array
  /** Observations per bucket (not cumulative); the last cell counts those above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(bounds: Float64Array) {
    this.bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
  }

  /** Count `value`; a value that is not finite is ignored (as prom-client rejects it). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return
    const bounds = this.bounds
    const n = bounds.length
    let i = 0
    while (i < n && value > (bounds[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }
}
