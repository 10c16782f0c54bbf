// The options of `idemMetrics()` and of `watch()`, their defaults, and their validation.

import type { Registry } from 'prom-client'
import { DEFAULT_MAX_LABEL_VALUES } from '../core/labels.js'

export interface IdemMetricsOptions {
  /** The registry the metrics are registered in. Default: prom-client's global `register`. */
  registry?: Registry
  /** Prefix of every metric name. Default `'idem_'`. */
  prefix?: string
  /** Most distinct values of one label (scopes, routes, consumers, relays…); the rest count under `other`. Default 100. */
  maxLabelValues?: number
  /** Upper bounds (seconds) of `idem_store_duration_seconds`. Default 0.1 ms to 2.5 s. */
  storeBuckets?: readonly number[]
  /** Upper bounds (seconds) of `idem_function_duration_seconds` and `idem_consumer_duration_seconds`. Default 1 ms to 60 s. */
  functionBuckets?: readonly number[]
}

export interface WatchOptions {
  /** The `consumer` or `relay` label of a consumer or an outbox relay. Default `'default'`. */
  name?: string
}

export const DEFAULT_PREFIX = 'idem_'
export const DEFAULT_NAME = 'default'

/** Store calls take from tens of microseconds (memory, a local Redis) to seconds (a database under load). */
export const DEFAULT_STORE_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
]

/** Functions (and whole deliveries) take from a millisecond to a minute. */
export const DEFAULT_FUNCTION_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]

export interface ResolvedOptions {
  registry: Registry | undefined
  prefix: string
  maxLabelValues: number
  storeBuckets: Float64Array
  functionBuckets: Float64Array
}

/** The options with their defaults, or a TypeError/RangeError naming the one that is wrong. */
export function resolveOptions(options: IdemMetricsOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('idemMetrics takes an options object: { registry?, prefix?, maxLabelValues?, … }')
  }
  const { registry, prefix = DEFAULT_PREFIX, maxLabelValues = DEFAULT_MAX_LABEL_VALUES } = options
  if (registry !== undefined && (registry === null || typeof registry.registerMetric !== 'function')) {
    throw new TypeError('idemMetrics: registry must be a prom-client Registry')
  }
  if (typeof prefix !== 'string' || !/^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new TypeError(
      `idemMetrics: prefix must be the start of a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${prefix}`,
    )
  }
  if (!Number.isInteger(maxLabelValues) || maxLabelValues < 1) {
    throw new RangeError(`idemMetrics: maxLabelValues must be an integer ≥ 1, got ${maxLabelValues}`)
  }
  return {
    registry,
    prefix,
    maxLabelValues,
    storeBuckets: buckets(options.storeBuckets ?? DEFAULT_STORE_BUCKETS, 'storeBuckets'),
    functionBuckets: buckets(options.functionBuckets ?? DEFAULT_FUNCTION_BUCKETS, 'functionBuckets'),
  }
}

/** Finite upper bounds in increasing order (`+Inf` is always added). */
function buckets(bounds: readonly number[], option: string): Float64Array {
  if (!Array.isArray(bounds) || bounds.length === 0) {
    throw new TypeError(`idemMetrics: ${option} must be a non-empty array of upper bounds in seconds`)
  }
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i]
    if (typeof bound !== 'number' || !Number.isFinite(bound) || (i > 0 && bound <= (bounds[i - 1] as number))) {
      throw new RangeError(
        `idemMetrics: ${option} must be finite numbers in increasing order, got [${bounds.join(', ')}]`,
      )
    }
  }
  return Float64Array.from(bounds)
}

/** A consumer's or relay's name, checked. */
export function nameOf(options: WatchOptions | undefined): string {
  if (options === undefined) return DEFAULT_NAME
  if (options === null || typeof options !== 'object') throw new TypeError('watch takes an options object: { name? }')
  const { name = DEFAULT_NAME } = options
  if (typeof name !== 'string' || name === '')
    throw new TypeError(`watch: name must be a non-empty string, got ${name}`)
  return name
}
