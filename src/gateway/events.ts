// What the gateway reports, for the audit log, logs and tests: one event per decided request
// (only built when someone listens), and one per change an operator made.

import type { Mode } from './config/schema.js'
import type { RouteOutcome } from './stats.js'

export interface GatewayDecisionEvent {
  route: string
  mode: Mode
  method: string
  outcome: RouteOutcome
  /** For `rejected`, and for what observe mode would have rejected: the problem's code. */
  code?: string
  /** The Idempotency-Key (or body key) when the request carried a well-formed one. */
  key?: string
  /** In observe mode, what enforce would have answered instead of forwarding. */
  wouldHave?: 'replayed' | 'rejected'
  /** The status the client got (undefined when the response broke off). */
  status: number | undefined
  /**
   * True when a store failed and this request went on unprotected (a route with
   * `onStoreFailure: open`): the idempotency store, or the rate limit's or the nonces' store.
   */
  failedOpen?: boolean
}

export interface GatewayEvents {
  decision: GatewayDecisionEvent
  /** A route's mode was switched through the admin API (until the next reload or restart). */
  mode_switched: { route: string; from: Mode; to: Mode }
  /** A key's record was removed through the admin API; `existed` tells whether there was one. */
  purged: { route: string; scope: string; key: string; existed: boolean }
  /** A new configuration was validated and swapped in. */
  config_reloaded: { file: string | undefined; routes: string[] }
  /** A new configuration was refused; the running one stays. */
  config_rejected: { file: string | undefined; error: Error }
  /** A store's circuit breaker changed state. */
  breaker: { store: string; state: 'closed' | 'open' | 'half_open'; previous: 'closed' | 'open' | 'half_open' }
}
