// The library's decisions in the audit log: subscribe to an Idempotency's events and record each
// as an audit event `{ type, route: scope, key, … }`. Typed structurally (src/audit does not
// depend on src/core): anything with `on(name, listener) => detach` fits, an `Idempotency` first.

import type { AuditEvent } from './types.js'

/** The events recorded by default: every one the library emits. */
export const IDEMPOTENCY_AUDIT_EVENTS = [
  'executed',
  'replayed',
  'mismatch',
  'in_progress',
  'takeover',
  'released',
  'lease_lost',
  'store_error',
] as const

export type IdempotencyAuditEventName = (typeof IDEMPOTENCY_AUDIT_EVENTS)[number]

/** What is read of an event: the fields every Idempotency event has, and the details some have. */
export interface IdempotencyEventLike {
  scope: string
  key: string
  id?: string
  attempt?: number
  durationMs?: number
  failed?: boolean
  cached?: boolean
  retryAfterMs?: number
  waiting?: boolean
  during?: string
  operation?: string
  failOpen?: boolean
  error?: unknown
}

/** An `Idempotency` as far as recording its events goes: `on(name, listener)` returning a detach function. */
export interface IdempotencyEventSource {
  on(name: IdempotencyAuditEventName, listener: (event: IdempotencyEventLike) => void): () => void
}

/** The part of an AuditLog this needs. */
export interface AuditRecorder {
  record(event: AuditEvent): Promise<void>
}

export interface RecordIdempotencyEventsOptions {
  /** Which events to record. Default: all of IDEMPOTENCY_AUDIT_EVENTS. */
  events?: readonly IdempotencyAuditEventName[]
  /**
   * A refused record (a full queue with onFull 'fail', a closed log): the listener cannot throw
   * into the library's run, so it is handed here. Default: ignored (the log's own stats count drops).
   */
  onError?: (error: Error) => void
}

/**
 * Record `idem`'s events in `log` from now on: `{ type: <event name>, route: scope, key, … }`
 * with the event's details (attempt, durationMs, cached, operation, failOpen, the error's
 * message…), never the function's value. Returns a function that stops recording.
 */
export function recordIdempotencyEvents(
  idem: IdempotencyEventSource,
  log: AuditRecorder,
  options: RecordIdempotencyEventsOptions = {},
): () => void {
  const names = options.events ?? IDEMPOTENCY_AUDIT_EVENTS
  for (const name of names) {
    if (!(IDEMPOTENCY_AUDIT_EVENTS as readonly string[]).includes(name)) {
      throw new TypeError(
        `recordIdempotencyEvents: unknown event ${JSON.stringify(name)} (one of ${IDEMPOTENCY_AUDIT_EVENTS.join(', ')})`,
      )
    }
  }
  const onError = options.onError ?? (() => {})
  const detach = [...new Set(names)].map((name) =>
    idem.on(name, (event) => {
      log.record(auditEventOf(name, event)).catch((error: unknown) => {
        onError(error instanceof Error ? error : new Error(String(error)))
      })
    }),
  )
  return () => {
    for (const stop of detach.splice(0)) stop()
  }
}

const DETAILS = [
  'attempt',
  'durationMs',
  'failed',
  'cached',
  'retryAfterMs',
  'waiting',
  'during',
  'operation',
  'failOpen',
] as const

function auditEventOf(type: IdempotencyAuditEventName, event: IdempotencyEventLike): AuditEvent {
  const recorded: AuditEvent = { type, route: event.scope, key: event.key }
  for (const name of DETAILS) if (event[name] !== undefined) recorded[name] = event[name]
  if (event.error !== undefined) {
    recorded.error = event.error instanceof Error ? event.error.message : String(event.error)
  }
  return recorded
}
