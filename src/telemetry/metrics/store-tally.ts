// The tallies of store calls: durations per operation (from the probe's `storeCall`, the hottest
// path: one Map lookup and a bucket scan) and store errors per operation (from `store_error`).

import type { StoreOperation } from '../../core/probe.js'
import { LabelValues } from '../core/labels.js'
import type { Labels } from './collected-histogram.js'
import { HistogramCells } from './histogram-cells.js'
import { LabelCounts } from './label-counts.js'

const OPERATIONS: readonly StoreOperation[] = [
  'begin',
  'complete',
  'release',
  'extend',
  'beginMany',
  'completeMany',
  'get',
  'delete',
  'sweep',
]

export class StoreTally {
  readonly errors: LabelCounts
  readonly #bounds: Float64Array
  readonly #names: LabelValues
  readonly #durations = new Map<string, { labels: Labels; cells: HistogramCells }>()

  constructor(maxLabelValues: number, storeBuckets: Float64Array) {
    this.errors = new LabelCounts(maxLabelValues)
    this.#bounds = storeBuckets
    this.#names = new LabelValues(Math.max(maxLabelValues, OPERATIONS.length))
    for (const operation of OPERATIONS) this.#series(operation)
  }

  /** A store call of `operation` took `durationMs`. */
  observe(operation: string, durationMs: number): void {
    const series = this.#durations.get(operation) ?? this.#series(operation)
    series.cells.observe(durationMs / 1000)
  }

  #series(operation: string): { labels: Labels; cells: HistogramCells } {
    const label = this.#names.of(operation)
    let series = this.#durations.get(label)
    if (series === undefined) {
      series = { labels: { operation: label }, cells: new HistogramCells(this.#bounds) }
      this.#durations.set(label, series)
    }
    return series
  }

  /** `idem_store_duration_seconds`: a series per operation called. */
  *durations(): Iterable<readonly [Labels, HistogramCells]> {
    for (const { labels, cells } of this.#durations.values()) if (cells.count > 0) yield [labels, cells]
  }
}
