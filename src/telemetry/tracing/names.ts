// The names idem/tracing gives its spans, attributes and events, written once. Span names are
// few and fixed (never a key or a scope in a name): backends group spans by name.

import type { StoreOperation } from '../../core/probe.js'

/** The span around one `run` or `runMany` member. */
export const RUN_SPAN = 'idem.run'
/** The span around one `transaction` call. */
export const TRANSACTION_SPAN = 'idem.transaction'
/** The span around one execution of the function, a child of the run span. */
export const EXECUTE_SPAN = 'idem.execute'
/** The event a run span gets when it answered with a stored outcome. */
export const REPLAY_EVENT = 'idem.replay'

/** Attributes of the run and execute spans: names of the record and what became of the call, never a payload or a result. */
export const Attr = {
  SCOPE: 'idem.scope',
  KEY: 'idem.key',
  RECORD_ID: 'idem.record_id',
  /** executed | replayed | failed_open | an error code (IN_PROGRESS, …) | error (the function's own). */
  OUTCOME: 'idem.outcome',
  ATTEMPT: 'idem.attempt',
  /** True when the execution took over a lapsed lease. */
  TAKEOVER: 'idem.takeover',
} as const

/** `idem.store.<operation>`, one name per store call a probe is told about. */
export const STORE_SPANS: Readonly<Record<StoreOperation, string>> = {
  begin: 'idem.store.begin',
  beginMany: 'idem.store.beginMany',
  complete: 'idem.store.complete',
  completeMany: 'idem.store.completeMany',
  release: 'idem.store.release',
  extend: 'idem.store.extend',
  get: 'idem.store.get',
  delete: 'idem.store.delete',
  sweep: 'idem.store.sweep',
}
