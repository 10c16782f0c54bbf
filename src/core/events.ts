// Lifecycle events of `run`, for metrics, logs and the gateway.

import { Emitter } from './emitter.js'

export interface IdempotencyEventBase {
  scope: string
  key: string
  /** The record id derived from (scope, key). */
  id: string
}

export interface IdempotencyEvents {
  /** The function ran and its outcome was stored. */
  executed: IdempotencyEventBase & {
    attempt: number
    /** How long the function ran (not its claim nor its completion); in transaction mode, the whole transaction. */
    durationMs: number
    /** True when the function threw an `isFinal` error, which was stored as the outcome. */
    failed: boolean
  }
  /** A duplicate received the stored outcome; `cached` when served from the local cache. */
  replayed: IdempotencyEventBase & { cached: boolean }
  /** A duplicate found the key held by a live lease. */
  in_progress: IdempotencyEventBase & { retryAfterMs: number; waiting: boolean }
  /** The key was reused with a different payload. */
  mismatch: IdempotencyEventBase
  /** This call took over a lapsed lease from a crashed or stalled worker. */
  takeover: IdempotencyEventBase & { attempt: number }
  /** The function threw a retryable error and the claim was dropped for a retry. */
  released: IdempotencyEventBase & { error: unknown }
  /** The claim was lost while the function ran (renewal or completion found another owner). */
  lease_lost: IdempotencyEventBase & { during: 'renewal' | 'complete' }
  /** The store failed; `failOpen` tells whether the call went on without it. */
  store_error: IdempotencyEventBase & { operation: string; error: unknown; failOpen: boolean }
}

export type IdempotencyEventName = keyof IdempotencyEvents
export type IdempotencyListener<E extends IdempotencyEventName> = (event: IdempotencyEvents[E]) => void

/** The emitter of a run's events; a throwing listener never breaks a run. */
export class EventHub extends Emitter<IdempotencyEvents> {}
