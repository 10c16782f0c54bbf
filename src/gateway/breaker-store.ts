// A store behind a circuit breaker (cockatiel): after `failures` consecutive failures of the store
// itself, every call fails at once with STORE_UNAVAILABLE instead of waiting on a store that is
// down, so that the gateway answers (or forwards, with onStoreFailure: open) without delay. After
// `halfOpenAfter`, one call is let through as a probe: its success closes the breaker, its failure
// opens it again.

import { type CircuitBreakerPolicy, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from '../contract/types.js'
import { isCallerError } from '../core/pipeline.js'
import { StoreUnavailableError } from '../errors.js'

export type BreakerState = 'closed' | 'open' | 'half_open'
export type BreakerListener = (state: BreakerState, previous: BreakerState) => void

export interface BreakerOptions {
  /** Consecutive store failures that open the breaker (at least 1). */
  failures: number
  /** How long the breaker stays open before one probe call is let through, in ms. */
  halfOpenAfter: number
}

/**
 * Only a failure of the store itself counts: a connection refused or lost, a timeout, a server
 * error, STORE_UNAVAILABLE (a closed store included), or any unknown error of a store written
 * elsewhere. The contract's normal outcomes do not: LEASE_LOST (the store answered, the claim is
 * someone else's), RESULT_TOO_LARGE (refused before any round trip), and the TypeError or
 * RangeError a store rejects bad arguments with. That is the core's own split (isCallerError), so
 * the breaker and Idempotency's fail-open policy agree on what "the store failed" means.
 */
function isStoreFailure(error: unknown): boolean {
  return !isCallerError(error)
}

function stateOf(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Closed:
      return 'closed'
    case CircuitState.HalfOpen:
      return 'half_open'
    default:
      // Open, and Isolated (held open by hand; never used here).
      return 'open'
  }
}

export class BreakerStore implements IdempotencyStore {
  /** The store's name in the gateway's configuration, for messages and metrics. */
  readonly name: string
  readonly #store: IdempotencyStore
  readonly #policy: CircuitBreakerPolicy
  readonly #halfOpenAfter: number
  readonly #listeners = new Set<BreakerListener>()
  // Mirrors of cockatiel's state, kept by its onStateChange event, so that the hot path reads two
  // fields instead of calling into cockatiel before each call.
  #state: BreakerState = 'closed'
  #openedAt = 0
  #opened = 0

  constructor(name: string, store: IdempotencyStore, options: BreakerOptions) {
    if (!Number.isInteger(options.failures) || options.failures < 1) {
      throw new TypeError(
        `Breaker for store "${name}": failures must be an integer of at least 1, got ${options.failures}`,
      )
    }
    if (!Number.isFinite(options.halfOpenAfter) || options.halfOpenAfter < 0) {
      throw new TypeError(
        `Breaker for store "${name}": halfOpenAfter must be a duration of 0 ms or more, got ${options.halfOpenAfter}`,
      )
    }
    this.name = name
    this.#store = store
    this.#halfOpenAfter = options.halfOpenAfter
    this.#policy = circuitBreaker(handleWhen(isStoreFailure), {
      breaker: new ConsecutiveBreaker(options.failures),
      halfOpenAfter: options.halfOpenAfter,
    })
    this.#policy.onStateChange((next) => this.#changed(stateOf(next)))
  }

  /** The store behind the breaker. */
  get store(): IdempotencyStore {
    return this.#store
  }

  get state(): BreakerState {
    return this.#state
  }

  /** How many times the breaker opened (a failed probe reopening it counts again). */
  get opened(): number {
    return this.#opened
  }

  get maxResultBytes(): number | undefined {
    return this.#store.maxResultBytes
  }

  /** Call `listener` at each change of state; returns the function that stops it. */
  onStateChange(listener: BreakerListener): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.begin(id, fingerprint, leaseMs, ttlMs))
  }

  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.complete(id, token, result, ttlMs))
  }

  release(id: string, token: string): Promise<void> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.release(id, token))
  }

  extend(id: string, token: string, leaseMs: number): Promise<number> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.extend(id, token, leaseMs))
  }

  get(id: string): Promise<IdempotencyRecord | null> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.get(id))
  }

  delete(id: string): Promise<boolean> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.delete(id))
  }

  beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.beginMany(items, leaseMs, ttlMs))
  }

  completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.completeMany(items, ttlMs))
  }

  sweep(limit: number): Promise<number> {
    if (this.#state !== 'closed' && this.#refusing()) return this.#refuse()
    return this.#policy.execute(() => this.#store.sweep(limit))
  }

  /** Closes the store behind, whatever the breaker's state. */
  close(): Promise<void> {
    return this.#store.close()
  }

  /**
   * True when this call must fail at once: open and still within halfOpenAfter, or half-open
   * with the probe still out. Cockatiel would make a call during the probe wait for the probe's
   * outcome (as long as the store's own timeout when the store hangs); failing it at once keeps
   * "one call goes to a store that may be down" literally true. Once halfOpenAfter has passed,
   * the call goes to cockatiel, which sends it as the probe. Our openedAt is read after
   * cockatiel's (in its event), so when we say the delay passed, cockatiel agrees.
   */
  #refusing(): boolean {
    return this.#state === 'half_open' || Date.now() - this.#openedAt < this.#halfOpenAfter
  }

  #refuse(): Promise<never> {
    const probing = this.#state === 'half_open' ? ' (half-open: a probe call is testing the store)' : ''
    return Promise.reject(
      new StoreUnavailableError(
        `The circuit breaker for store "${this.name}" is open${probing}: the store failed repeatedly, calls fail at once until a probe succeeds`,
      ),
    )
  }

  #changed(next: BreakerState): void {
    const previous = this.#state
    if (next === previous) return
    this.#state = next
    if (next === 'open') {
      this.#openedAt = Date.now()
      this.#opened++
    }
    for (const listener of this.#listeners) {
      try {
        listener(next, previous)
      } catch (error) {
        // Called from inside the store call that changed the state: a listener's bug must not
        // become that call's outcome. Reported, not thrown.
        process.emitWarning(
          `A state listener of the breaker for store "${this.name}" threw: ${(error as Error)?.message ?? error}`,
          { code: 'IDEM_BREAKER_LISTENER' },
        )
      }
    }
  }
}
