// idem/metrics: Prometheus metrics for Idem through prom-client (an optional peer dependency).

export type { Watchable } from '../core/targets.js'
export { type IdemMetrics, idemMetrics } from './idem-metrics.js'
export type { IdemMetricsOptions, WatchOptions } from './options.js'
