// The tally of HTTP requests decided by an `HttpIdempotency`: a count per route, method, outcome
// and status, each label capped (a route is the path itself where the framework knows no template).

import type { HttpResponseEvent } from '../../http/core/events.js'
import { LabelValues } from '../core/labels.js'
import type { Labels } from './collected-histogram.js'
import type { Sample } from './scrape-metrics.js'

/** The `status` label of a request that sent none (an abandoned response, `no_key`). */
export const NO_STATUS = 'none'

export class HttpTally {
  readonly #routes: LabelValues
  readonly #methods: LabelValues
  readonly #statuses: LabelValues
  readonly #rows = new Map<string, { labels: Labels; count: number }>()

  constructor(maxLabelValues: number) {
    this.#routes = new LabelValues(maxLabelValues)
    this.#methods = new LabelValues(maxLabelValues)
    this.#statuses = new LabelValues(maxLabelValues)
  }

  count(event: HttpResponseEvent): void {
    const route = this.#routes.of(event.route)
    const method = this.#methods.of(event.method)
    const status = event.status === undefined ? NO_STATUS : this.#statuses.of(String(event.status))
    const key = `${route}\n${method}\n${event.outcome}\n${status}`
    const row = this.#rows.get(key)
    if (row !== undefined) row.count++
    else this.#rows.set(key, { labels: { route, method, outcome: event.outcome, status }, count: 1 })
  }

  /** `idem_http_requests_total`. */
  *samples(): Iterable<Sample> {
    for (const { labels, count } of this.#rows.values()) yield [labels, count]
  }
}
