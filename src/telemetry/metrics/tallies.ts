// Every running total one `idemMetrics()` keeps, filled by the listeners and read by the metrics
// at scrape.

import { ConsumerTally } from './consumer-tally.js'
import { HttpTally } from './http-tally.js'
import { LabelCounts } from './label-counts.js'
import type { ResolvedOptions } from './options.js'
import { RelayTally } from './relay-tally.js'
import { ScopeTally } from './scope-tally.js'
import { StoreTally } from './store-tally.js'

export class Tallies {
  readonly scopes: ScopeTally
  readonly store: StoreTally
  readonly http: HttpTally
  readonly consumers: ConsumerTally
  readonly relays: RelayTally
  /** Anomalies by kind. */
  readonly anomalies: LabelCounts

  constructor({ maxLabelValues, storeBuckets, functionBuckets }: ResolvedOptions) {
    this.scopes = new ScopeTally(maxLabelValues, functionBuckets)
    this.store = new StoreTally(maxLabelValues, storeBuckets)
    this.http = new HttpTally(maxLabelValues)
    this.consumers = new ConsumerTally(maxLabelValues, functionBuckets)
    this.relays = new RelayTally(maxLabelValues)
    this.anomalies = new LabelCounts(maxLabelValues)
  }
}
