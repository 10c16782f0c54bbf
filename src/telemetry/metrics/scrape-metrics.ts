// prom-client metrics whose values are copied from Idem's own tallies when the registry is
// scraped (`collect`), never updated on the hot path: counters of running totals, gauges read or
// asked for at scrape.

import { Counter, Gauge, type Registry } from 'prom-client'
import type { Labels } from './collected-histogram.js'

/** One series: its labels and its value. */
export type Sample = readonly [Labels, number]

/** A counter whose series are `samples()` at each scrape. */
export function collectedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  samples: () => Iterable<Sample>,
): Counter {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Counter) {
      this.reset()
      for (const [labels, value] of samples()) this.inc(labels, value)
    },
  })
}

/** A gauge whose series are what `samples()` resolves to at each scrape. */
export function collectedGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  samples: () => Promise<Iterable<Sample>> | Iterable<Sample>,
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect(this: Gauge) {
      const read = await samples()
      this.reset()
      for (const [labels, value] of read) this.set(labels, value)
    },
  })
}

/** Longest wait, at scrape, for a broker's lag or an outbox's backlog: a stuck call never stalls a scrape. */
export const SCRAPE_CALL_TIMEOUT_MS = 5000

/**
 * What `call()` resolves to, or undefined when it throws, rejects or has not answered within
 * `timeoutMs`: a failing broker or database leaves its samples out of one scrape, never fails it.
 */
export async function answerOrNothing<T>(
  call: () => Promise<T> | T,
  timeoutMs: number = SCRAPE_CALL_TIMEOUT_MS,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, undefined)
    timer.unref()
  })
  try {
    return await Promise.race([Promise.resolve().then(call), late])
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
}
