// Lifecycle events of `run`, for metrics, logs and the gateway.

export interface IdempotencyEventBase {
  scope: string
  key: string
  /** The record id derived from (scope, key). */
  id: string
}

export interface IdempotencyEvents {
  /** The function ran and its outcome was stored. */
  executed: IdempotencyEventBase & { attempt: number; durationMs: number; failed: boolean }
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

/** A tiny typed emitter; a throwing listener never breaks a run. */
export class EventHub {
  readonly #listeners = new Map<IdempotencyEventName, Set<(event: never) => void>>()

  on<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): () => void {
    let set = this.#listeners.get(name)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(name, set)
    }
    set.add(listener as (event: never) => void)
    return () => this.off(name, listener)
  }

  off<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): void {
    this.#listeners.get(name)?.delete(listener as (event: never) => void)
  }

  /** True when someone listens: lets the hot path skip building event objects. */
  has(name: IdempotencyEventName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0
  }

  emit<E extends IdempotencyEventName>(name: E, event: IdempotencyEvents[E]): void {
    const set = this.#listeners.get(name)
    if (set === undefined) return
    for (const listener of set) {
      try {
        ;(listener as IdempotencyListener<E>)(event)
      } catch {
        // listeners observe; they never decide the outcome of a run
      }
    }
  }
}
