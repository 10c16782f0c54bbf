// idem/logging: structured log entries (pino's call shape) for what needs an operator's eye:
// takeovers, lost claims, store failures, fail-open executions, mismatches, dead letters, broker
// refusals and anomalies. Never a payload, a result or a key.

export type { LogEntry, LogEventName } from './entries.js'
export type { Logger, LogLevel } from './logger.js'
export { type IdemLogging, type IdemLoggingOptions, idemLogging, type WatchOptions } from './logging.js'
export { type ErrorSummary, logDigest } from './redact.js'
