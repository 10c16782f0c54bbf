// idem/anomalies: alerts when a scope's (a route's, a caller's) replays or mismatches leave their
// learned baseline: retry storms, redelivered backlogs, keys reused across payloads.

export type { Anomaly, AnomalyKind, AnomalySource } from '../core/anomaly.js'
export { AnomalyDetector, type AnomalyDetectorEvents, type ObservedKind } from './detector.js'
export type { AnomalyResolved } from './judge.js'
export type { AnomalyDetectorOptions } from './options.js'
