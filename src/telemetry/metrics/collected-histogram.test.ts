// CollectedHistogram against prom-client's own Histogram: fed the same observations, `get()`
// and the text exposition are the same, bucket for bucket, `+Inf`, `_sum` and `_count` included.

import { Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { CollectedHistogram, type Labels } from './collected-histogram.js'
import { HistogramCells } from './histogram-cells.js'

const BOUNDS = [0.005, 0.01, 0.1, 1]
const OBSERVED: [string, number][] = [
  ['begin', 0.001],
  ['begin', 0.005], // on a bound: counted in that bucket (le is "less or equal")
  ['begin', 0.05],
  ['begin', 7], // above every bound: only in +Inf
  ['complete', 0.2],
  ['complete', 0.0001],
]

function both() {
  const theirs = new Registry()
  const reference = new Histogram({
    name: 'h_seconds',
    help: 'help text',
    labelNames: ['operation'],
    buckets: BOUNDS,
    registers: [theirs],
  })
  const ours = new Registry()
  const series = new Map<string, HistogramCells>()
  const metric = new CollectedHistogram(
    'h_seconds',
    'help text',
    ['operation'],
    Float64Array.from(BOUNDS),
    function* (): Iterable<readonly [Labels, HistogramCells]> {
      for (const [operation, cells] of series) yield [{ operation }, cells]
    },
  )
  ours.registerMetric(metric as unknown as Histogram)
  for (const [operation, value] of OBSERVED) {
    reference.observe({ operation }, value)
    let cells = series.get(operation)
    if (cells === undefined) {
      cells = new HistogramCells(Float64Array.from(BOUNDS))
      series.set(operation, cells)
    }
    cells.observe(value)
  }
  return { theirs, ours, metric, reference }
}

describe('CollectedHistogram', () => {
  it("gets what prom-client's Histogram gets for the same observations", async () => {
    const { metric, reference } = both()
    expect(await metric.get()).toStrictEqual(await reference.get())
  })

  it("is exposed as prom-client's Histogram is, in text and in JSON", async () => {
    const { theirs, ours } = both()
    expect(await ours.metrics()).toBe(await theirs.metrics())
    expect(await ours.getMetricsAsJSON()).toStrictEqual(await theirs.getMetricsAsJSON())
    expect(await ours.metrics()).toContain('h_seconds_bucket{le="0.005",operation="begin"} 2\n')
    expect(await ours.metrics()).toContain('h_seconds_bucket{le="+Inf",operation="begin"} 4\n')
  })

  it('ignores a value that is not finite, and has no series before the first observation', async () => {
    const cells = new HistogramCells(Float64Array.from(BOUNDS))
    cells.observe(Number.NaN)
    cells.observe(Number.POSITIVE_INFINITY)
    expect(cells.count).toBe(0)
    const empty = new CollectedHistogram('e', 'help', [], Float64Array.from(BOUNDS), () => [])
    expect((await empty.get()).values).toEqual([])
  })
})
