// The gateway's anomaly alerts (idem/anomalies, docs/observability.md "Anomaly detection"): one
// AnomalyDetector watches every route's Idempotency (and the routes a reload builds), and the last
// RECENT alerts are kept in memory for the admin API (`GET /v1/anomalies`) and the dashboard.
//
// Always on, with no configuration switch: the detector costs a few counter increments per
// decided request, one unref'd timer per window, and memory bounded by its `maxSubjects` (10 000
// subjects by default); it sends nothing anywhere unless someone asks the admin API.

import { AnomalyDetector } from '../telemetry/anomalies/detector.js'
import type { AnomalyResolved } from '../telemetry/anomalies/judge.js'
import type { AnomalyDetectorOptions } from '../telemetry/anomalies/options.js'
import type { Anomaly } from '../telemetry/core/anomaly.js'
import type { RouteWatcher } from './operations.js'

/** How many alerts are kept, newest first. */
export const RECENT_ANOMALIES = 100

/** An alert as the admin API shows it: the detector's anomaly, and when its episode ended. */
export interface GatewayAnomaly extends Anomaly {
  /** When the episode ended (Date.now()), absent while it lasts. */
  resolvedAt?: number
  /** Why it ended: `calm` (back within the baseline) or `relearned` (taken as the new normal). */
  resolvedBy?: AnomalyResolved['reason']
}

export class GatewayAnomalies {
  readonly detector: AnomalyDetector
  readonly #recent: GatewayAnomaly[] = []
  readonly #stop: Array<() => void> = []
  readonly #now: () => number

  /** `options`: the detector's (defaults: 10 s windows, 30 of warm-up); tests shorten them. */
  constructor(options: AnomalyDetectorOptions = {}) {
    this.detector = new AnomalyDetector(options)
    this.#now = options.now ?? Date.now
    this.#stop.push(
      this.detector.on('anomaly', (anomaly) => {
        this.#recent.unshift({ ...anomaly })
        if (this.#recent.length > RECENT_ANOMALIES) this.#recent.length = RECENT_ANOMALIES
      }),
      this.detector.on('resolved', (resolved) => {
        const open = this.#recent.find(
          (a) =>
            a.resolvedAt === undefined &&
            a.kind === resolved.kind &&
            a.scope === resolved.scope &&
            a.subject === resolved.subject &&
            a.principal === resolved.principal,
        )
        if (open === undefined) return
        open.resolvedAt = this.#now()
        open.resolvedBy = resolved.reason
      }),
    )
  }

  /** Watch every route of `gateway`, now and after each reload. */
  attach(gateway: { watchRoutes(watch: RouteWatcher): () => void }): void {
    this.#stop.push(gateway.watchRoutes((idem) => this.detector.watch(idem)))
  }

  /** The last alerts, newest first (copies). */
  recent(): GatewayAnomaly[] {
    return this.#recent.map((anomaly) => ({ ...anomaly }))
  }

  close(): void {
    for (const stop of this.#stop.splice(0)) stop()
    this.detector.close()
  }
}
