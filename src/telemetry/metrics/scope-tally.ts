// The tallies of runs, one per scope label: requests by outcome, lease takeovers, and the
// function's durations. Listeners find a scope's tally by its raw scope in one Map lookup; the
// raw scope is turned into its label (principal dropped, capped with `other`) once.

import { ScopeLabels } from '../core/labels.js'
import type { Labels } from './collected-histogram.js'
import { HistogramCells } from './histogram-cells.js'
import type { Sample } from './scrape-metrics.js'

/** Raw scopes remembered before the lookup map is cleared (HTTP scopes are one per principal). */
const MAX_RAW_SCOPES = 10_000

/** The running totals of one scope label. */
export class ScopeStats {
  executed = 0
  finalError = 0
  replayed = 0
  inProgress = 0
  mismatch = 0
  released = 0
  leaseLost = 0
  failedOpen = 0
  storeUnavailable = 0
  takeovers = 0
  readonly duration: HistogramCells
  readonly scope: string
  readonly labels: Labels

  constructor(scope: string, bounds: Float64Array) {
    this.scope = scope
    this.labels = { scope }
    this.duration = new HistogramCells(bounds)
  }
}

/** The `outcome` label of `idem_requests_total`, and where its count is kept. */
export const OUTCOMES: readonly (readonly [string, (stats: ScopeStats) => number])[] = [
  ['executed', (s) => s.executed],
  ['final_error', (s) => s.finalError],
  ['replayed', (s) => s.replayed],
  ['in_progress', (s) => s.inProgress],
  ['mismatch', (s) => s.mismatch],
  ['released', (s) => s.released],
  ['lease_lost', (s) => s.leaseLost],
  ['failed_open', (s) => s.failedOpen],
  ['store_unavailable', (s) => s.storeUnavailable],
]

export class ScopeTally {
  readonly #labels: ScopeLabels
  readonly #bounds: Float64Array
  readonly #byRaw = new Map<string, ScopeStats>()
  readonly #byLabel = new Map<string, ScopeStats>()

  constructor(maxLabelValues: number, functionBuckets: Float64Array) {
    this.#labels = new ScopeLabels(maxLabelValues)
    this.#bounds = functionBuckets
  }

  /** The tally of the raw scope `scope`. */
  of(scope: string): ScopeStats {
    return this.#byRaw.get(scope) ?? this.#first(scope)
  }

  #first(scope: string): ScopeStats {
    const label = this.#labels.of(scope)
    let stats = this.#byLabel.get(label)
    if (stats === undefined) {
      stats = new ScopeStats(label, this.#bounds)
      this.#byLabel.set(label, stats)
    }
    if (this.#byRaw.size >= MAX_RAW_SCOPES) this.#byRaw.clear()
    this.#byRaw.set(scope, stats)
    return stats
  }

  /** `idem_requests_total`: a sample per scope and outcome that happened. */
  *requests(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) {
      for (const [outcome, read] of OUTCOMES) {
        const value = read(stats)
        if (value > 0) yield [{ scope: stats.scope, outcome }, value]
      }
    }
  }

  /** `idem_lease_takeovers_total`: a sample per scope that had one. */
  *takeovers(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) if (stats.takeovers > 0) yield [stats.labels, stats.takeovers]
  }

  /** `idem_function_duration_seconds`: a series per scope whose function ran. */
  *durations(): Iterable<readonly [Labels, HistogramCells]> {
    for (const stats of this.#byLabel.values()) if (stats.duration.count > 0) yield [stats.labels, stats.duration]
  }
}
