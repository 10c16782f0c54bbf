// What an anomaly detector (idem/anomalies) reports, in a file of its own so that idem/metrics can
// count anomalies (`idem_anomalies_total{kind}`) without depending on the detector.

/** `replays`: a burst of duplicates replayed; `mismatches`: a burst of keys reused with another payload. */
export type AnomalyKind = 'replays' | 'mismatches'

export interface Anomaly {
  kind: AnomalyKind
  /**
   * Whose rate left its baseline: `scope` (every caller of a scope or route together) or
   * `principal` (one caller of an HTTP route, by the hash the HTTP layer puts in its scopes).
   */
  subject: 'scope' | 'principal'
  /** The scope's label: the scope, or for HTTP `prefix|METHOD route` (never the principal). */
  scope: string
  /** For `principal`: the hashed principal (27 characters of base64url SHA-256), never the raw one. */
  principal?: string
  /** Events of this kind per second in the window that raised the alert. */
  rate: number
  /** The learned rate per second it was compared with. */
  baseline: number
  /** When it was raised (Date.now()). */
  at: number
}

/** Marks an object that emits `anomaly` events (`on('anomaly', listener)`), for `watch()`. */
export const ANOMALY_SOURCE: unique symbol = Symbol.for('idem.anomaly-source')

export interface AnomalySource {
  readonly [ANOMALY_SOURCE]: true
  on(name: 'anomaly', listener: (anomaly: Anomaly) => void): () => void
}

export function isAnomalySource(value: unknown): value is AnomalySource {
  return (value as Partial<AnomalySource> | null)?.[ANOMALY_SOURCE] === true
}
