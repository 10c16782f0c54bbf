// What each route did since the gateway started: per outcome, per rejection code, what observe
// mode would have done, and how the upstream answered. Plain numbers on the hot path; the admin
// API and the metrics read them.

/** How a request through a route ended. */
export type RouteOutcome =
  /** Forwarded without a decision: the route is `off`, or the method is not one it covers. */
  | 'forwarded'
  /** The key was claimed, the upstream ran, its response was stored. */
  | 'executed'
  /** A stored response was sent again; the upstream did not run. */
  | 'replayed'
  /** A problem was answered instead of forwarding (see `rejected` by code). */
  | 'rejected'
  /** The upstream ran but answered 5xx or broke off: the key was released for a retry. */
  | 'released'
  /** No key where one is optional: forwarded unprotected. */
  | 'no_key'

export const ROUTE_OUTCOMES: readonly RouteOutcome[] = [
  'forwarded',
  'executed',
  'replayed',
  'rejected',
  'released',
  'no_key',
]

/** What an `observe` route would have answered instead of forwarding. */
export type ObservedDecision = 'replayed' | 'rejected'

export type UpstreamClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'unavailable' | 'broken'

export interface RouteStatsSnapshot {
  requests: number
  outcomes: Record<RouteOutcome, number>
  /** Rejections by code: MISSING_KEY, IN_PROGRESS, FINGERPRINT_MISMATCH, RATE_LIMITED, BAD_SIGNATURE… */
  rejected: Record<string, number>
  /** In observe mode: what enforce would have answered instead of forwarding. */
  observed: { replayed: number; rejected: number; rejectedByCode: Record<string, number> }
  /** Requests forwarded unprotected because the store (or its breaker) failed and the route fails open. */
  failedOpen: number
  upstream: Partial<Record<UpstreamClass, number>>
}

export class RouteStats {
  requests = 0
  failedOpen = 0
  readonly #outcomes: Record<RouteOutcome, number> = {
    forwarded: 0,
    executed: 0,
    replayed: 0,
    rejected: 0,
    released: 0,
    no_key: 0,
  }
  readonly #rejected = new Map<string, number>()
  #observedReplayed = 0
  #observedRejected = 0
  readonly #observedByCode = new Map<string, number>()
  readonly #upstream = new Map<UpstreamClass, number>()

  outcome(outcome: RouteOutcome, code?: string): void {
    this.#outcomes[outcome]++
    if (outcome === 'rejected' && code !== undefined) bump(this.#rejected, code)
  }

  observed(decision: ObservedDecision, code?: string): void {
    if (decision === 'replayed') this.#observedReplayed++
    else {
      this.#observedRejected++
      if (code !== undefined) bump(this.#observedByCode, code)
    }
  }

  upstream(status: number, failure?: 'timeout' | 'unavailable' | 'broken'): void {
    const cls: UpstreamClass = failure ?? (`${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as UpstreamClass)
    bump(this.#upstream, cls)
  }

  snapshot(): RouteStatsSnapshot {
    return {
      requests: this.requests,
      outcomes: { ...this.#outcomes },
      rejected: Object.fromEntries(this.#rejected),
      observed: {
        replayed: this.#observedReplayed,
        rejected: this.#observedRejected,
        rejectedByCode: Object.fromEntries(this.#observedByCode),
      },
      failedOpen: this.failedOpen,
      upstream: Object.fromEntries(this.#upstream),
    }
  }
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}
