// The tallies of consumers, one per `consumer` label: deliveries received and settled (by
// outcome), broker errors, durations, and the consumers (with their adapter's handle, if given)
// read at scrape for `in_flight` and asked for `lag`.

import type { ConsumerEvents } from '../../consumer/types.js'
import { LabelValues } from '../core/labels.js'
import type { Target } from '../core/targets.js'
import type { Labels } from './collected-histogram.js'
import { HistogramCells } from './histogram-cells.js'
import { LabelCounts } from './label-counts.js'
import { answerOrNothing, type Sample } from './scrape-metrics.js'

type ConsumerTarget = Extract<Target, { kind: 'consumer' }>
/** One watched consumer core, and the adapter handle it was watched through (it may know the lag). */
export interface ConsumerMember {
  consumer: ConsumerTarget['consumer']
  handle: ConsumerTarget['handle']
}

/** The `outcome` label of `idem_consumer_settled_total`, and where its count is kept. */
const OUTCOMES: readonly (readonly [string, (stats: ConsumerStats) => number])[] = [
  ['executed', (s) => s.executed],
  ['replayed', (s) => s.replayed],
  ['retried', (s) => s.retried],
  ['dead_lettered', (s) => s.deadLettered],
]

/** The running totals of one consumer label. */
export class ConsumerStats {
  received = 0
  executed = 0
  replayed = 0
  retried = 0
  deadLettered = 0
  readonly brokerErrors: LabelCounts
  readonly duration: HistogramCells
  readonly members = new Set<ConsumerMember>()
  readonly labels: Labels

  constructor(name: string, maxLabelValues: number, bounds: Float64Array) {
    this.labels = { consumer: name }
    this.brokerErrors = new LabelCounts(maxLabelValues)
    this.duration = new HistogramCells(bounds)
  }

  onSettled(event: ConsumerEvents['settled']): void {
    switch (event.outcome) {
      case 'executed':
        this.executed++
        break
      case 'replayed':
        this.replayed++
        break
      case 'retried':
        this.retried++
        break
      case 'dead_lettered':
        this.deadLettered++
        break
    }
    this.duration.observe(event.durationMs / 1000)
  }
}

export class ConsumerTally {
  readonly #names: LabelValues
  readonly #maxLabelValues: number
  readonly #bounds: Float64Array
  readonly #byLabel = new Map<string, ConsumerStats>()

  constructor(maxLabelValues: number, functionBuckets: Float64Array) {
    this.#names = new LabelValues(maxLabelValues)
    this.#maxLabelValues = maxLabelValues
    this.#bounds = functionBuckets
  }

  /** The tally of the consumers named `name`. */
  of(name: string): ConsumerStats {
    const label = this.#names.of(name)
    let stats = this.#byLabel.get(label)
    if (stats === undefined) {
      stats = new ConsumerStats(label, this.#maxLabelValues, this.#bounds)
      this.#byLabel.set(label, stats)
    }
    return stats
  }

  /** `idem_consumer_received_total`: every consumer label watched, from 0. */
  *received(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) yield [stats.labels, stats.received]
  }

  /** `idem_consumer_settled_total`: a sample per consumer and outcome that happened. */
  *settled(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) {
      for (const [outcome, read] of OUTCOMES) {
        const value = read(stats)
        if (value > 0) yield [{ ...stats.labels, outcome }, value]
      }
    }
  }

  /** `idem_consumer_broker_errors_total`. */
  *brokerErrors(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) yield* stats.brokerErrors.samples('operation', stats.labels)
  }

  /** `idem_consumer_duration_seconds`: a series per consumer that settled a delivery. */
  *durations(): Iterable<readonly [Labels, HistogramCells]> {
    for (const stats of this.#byLabel.values()) if (stats.duration.count > 0) yield [stats.labels, stats.duration]
  }

  /** `idem_consumer_in_flight`: the sum over the consumers watched under each label now. */
  *inFlight(): Iterable<Sample> {
    for (const stats of this.#byLabel.values()) {
      if (stats.members.size === 0) continue
      let sum = 0
      for (const { consumer } of stats.members) sum += consumer.inFlight
      yield [stats.labels, sum]
    }
  }

  /**
   * `idem_consumer_lag`: asked of each handle that can tell. A label gets a sample only when every
   * handle under it answered with a number: none where a broker does not say, failed or is slow.
   */
  async lag(): Promise<Sample[]> {
    const asked = [...this.#byLabel.values()].map(async (stats): Promise<Sample | undefined> => {
      const handles = [...stats.members].map((member) => member.handle)
      if (handles.length === 0) return undefined
      const answers = await Promise.all(
        handles.map((handle) => (handle?.lag === undefined ? undefined : answerOrNothing(() => handle.lag?.()))),
      )
      let sum = 0
      for (const answer of answers) {
        if (typeof answer !== 'number' || !Number.isFinite(answer)) return undefined
        sum += answer
      }
      return [stats.labels, sum]
    })
    return (await Promise.all(asked)).filter((sample): sample is Sample => sample !== undefined)
  }
}
