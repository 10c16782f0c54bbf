// A histogram metric for a prom-client Registry whose series are read from `HistogramCells` at
// scrape: `get()` returns what prom-client's own Histogram.get() returns (the registry, cluster
// aggregation and `getMetricsAsJSON()` treat it as one), while observing never touches it.

import type { HistogramCells } from './histogram-cells.js'

/** Label values of one series. */
export type Labels = Readonly<Record<string, string>>

/** One value of a metric, as prom-client's `get()` lists them. */
export interface MetricValue {
  value: number
  metricName?: string
  exemplar?: null
  labels: Record<string, string | number>
}

/** What a metric's `get()` resolves to, as prom-client's. */
export interface MetricData {
  name: string
  help: string
  type: 'histogram'
  values: MetricValue[]
  aggregator: 'sum'
}

export class CollectedHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly #bounds: Float64Array
  readonly #series: () => Iterable<readonly [Labels, HistogramCells]>

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: Float64Array,
    series: () => Iterable<readonly [Labels, HistogramCells]>,
  ) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
    this.#bounds = bounds
    this.#series = series
  }

  /** The series as prom-client's Histogram.get() lists them: cumulative buckets, `+Inf`, `_sum`, `_count`. */
  async get(): Promise<MetricData> {
    const bucket = `${this.name}_bucket`
    const values: MetricValue[] = []
    for (const [labels, cells] of this.#series()) {
      let cumulative = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += cells.counts[i] as number
        values.push({
          value: cumulative,
          metricName: bucket,
          exemplar: null,
          labels: { le: this.#bounds[i] as number, ...labels },
        })
      }
      values.push(
        { value: cells.count, metricName: bucket, exemplar: null, labels: { le: '+Inf', ...labels } },
        { value: cells.sum, metricName: `${this.name}_sum`, exemplar: undefined, labels: { ...labels } },
        { value: cells.count, metricName: `${this.name}_count`, exemplar: undefined, labels: { ...labels } },
      )
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /**
   * `registry.resetMetrics()` calls this. The series are cumulative tallies of what was watched
   * (as a counter's are) and are not cleared.
   */
  reset(): void {}
}
