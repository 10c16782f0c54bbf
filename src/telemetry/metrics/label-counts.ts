// A count per value of one label, with the label's values capped (the rest count under `other`):
// store errors by operation, anomalies by kind, broker errors by operation.

import { LabelValues } from '../core/labels.js'
import type { Sample } from './scrape-metrics.js'

export class LabelCounts {
  readonly #values: LabelValues
  readonly #counts = new Map<string, number>()

  constructor(maxLabelValues: number) {
    this.#values = new LabelValues(maxLabelValues)
  }

  add(value: string): void {
    const label = this.#values.of(value)
    this.#counts.set(label, (this.#counts.get(label) ?? 0) + 1)
  }

  /** One sample per value seen, labelled `name` (plus `labels`). */
  *samples(name: string, labels: Readonly<Record<string, string>> = {}): Iterable<Sample> {
    for (const [value, count] of this.#counts) yield [{ ...labels, [name]: value }, count]
  }
}
