// Reading a prom-client registry in tests: the samples of one metric (a histogram's `_bucket`,
// `_sum` and `_count` by their own names), and their sum over the samples matching some labels,
// as PromQL's `sum(name{labels})`.

import type { Registry } from 'prom-client'

export interface Sample {
  labels: Record<string, string | number>
  value: number
}

/** Every sample named `name` (a metric, or a histogram's `<name>_bucket`, `_sum`, `_count`). */
export async function samplesOf(registry: Registry, name: string): Promise<Sample[]> {
  const found: Sample[] = []
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const value of metric.values) {
      const sampleName = (value as { metricName?: string }).metricName ?? metric.name
      if (sampleName === name) found.push({ labels: { ...value.labels } as Sample['labels'], value: value.value })
    }
  }
  return found
}

/** The sum of the samples named `name` whose labels include `labels`; 0 when none matches. */
export async function sumOf(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  let sum = 0
  for (const sample of await samplesOf(registry, name)) {
    if (Object.entries(labels).every(([label, value]) => String(sample.labels[label]) === value)) sum += sample.value
  }
  return sum
}

/** The distinct values of `label` among the samples named `name`. */
export async function labelValues(registry: Registry, name: string, label: string): Promise<string[]> {
  const values = new Set<string>()
  for (const sample of await samplesOf(registry, name)) {
    const value = sample.labels[label]
    if (value !== undefined) values.add(String(value))
  }
  return [...values].sort()
}
