// The growth detector of the soak run: does a sampled series (heap, RSS, open handles) still
// grow at the end of the run, or has it levelled off?
//
// The slope is Theil–Sen's, the median of the slopes between every pair of samples, rather than a
// least-squares fit: one odd sample (a burst of in-flight requests at the instant of sampling, a
// page the allocator kept) moves a least-squares line but not a median, and a series that truly
// grows moves every pairwise slope. The verdict compares the growth the slope implies over the
// window with an allowance stated in the series' own unit, so that an allowance reads as "this
// much growth in the checked window is noise" and a leak of L per operation is caught once
// L x operations in the window exceeds it.

export interface Point {
  /** Seconds since the start of the run. */
  t: number
  value: number
}

export interface GrowthOptions {
  points: readonly Point[]
  /** Only the points at or after this time (s) are fitted: the end of the warm-up, or half-way. */
  from: number
  /** Growth over the window (slope x its length) that still passes, in the series' unit. */
  allowance: number
  /** Fewer points than this in the window fail as inconclusive. Default 5. */
  minPoints?: number
}

export interface GrowthResult {
  pass: boolean
  /** Theil–Sen slope, per second. */
  slopePerS: number
  /** slopePerS x the window's length: what the trend adds over the window. */
  growth: number
  allowance: number
  /** First and last time of the window, and how many points it holds. */
  fromS: number
  toS: number
  points: number
  /** Why it failed, when it did. */
  reason?: string
}

/** Median of the pairwise slopes; 0 for fewer than two distinct times. */
export function theilSenSlope(points: readonly Point[]): number {
  const slopes: number[] = []
  for (let i = 0; i < points.length; i++) {
    const a = points[i] as Point
    for (let j = i + 1; j < points.length; j++) {
      const b = points[j] as Point
      if (b.t !== a.t) slopes.push((b.value - a.value) / (b.t - a.t))
    }
  }
  if (slopes.length === 0) return 0
  slopes.sort((x, y) => x - y)
  const mid = slopes.length >> 1
  return slopes.length % 2 === 1 ? (slopes[mid] as number) : ((slopes[mid - 1] as number) + (slopes[mid] as number)) / 2
}

export function detectGrowth(options: GrowthOptions): GrowthResult {
  const window = options.points.filter((p) => p.t >= options.from)
  const minPoints = options.minPoints ?? 5
  const fromS = window[0]?.t ?? options.from
  const toS = window[window.length - 1]?.t ?? options.from
  const base = { allowance: options.allowance, fromS, toS, points: window.length }
  if (window.length < minPoints) {
    return {
      ...base,
      pass: false,
      slopePerS: 0,
      growth: 0,
      reason: `inconclusive: ${window.length} samples in the window, at least ${minPoints} needed`,
    }
  }
  const slopePerS = theilSenSlope(window)
  const growth = slopePerS * (toS - fromS)
  const pass = growth <= options.allowance
  return pass
    ? { ...base, pass, slopePerS, growth }
    : {
        ...base,
        pass,
        slopePerS,
        growth,
        reason: `grows ${growth.toFixed(1)} over the window, allowed ${options.allowance}`,
      }
}
