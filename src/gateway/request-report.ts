// How one request through a route ended: its route's counters, and (only when someone listens,
// such as the audit log) the decision event with the request's key.

import type { Emitter } from '../core/emitter.js'
import { parseKeyHeader } from '../http/core/key-header.js'
import type { HeaderRecord } from '../http/core/types.js'
import type { GatewayEvents } from './events.js'
import type { GatewayRoute } from './gateway-route.js'
import type { RouteOutcome } from './stats.js'

export class RequestReport {
  /** Set when a store failed and a check was skipped for this request (fail-open routes only). */
  failedOpen = false
  /** Where the key is read for the event: the request's headers, or the HTTP core's with a body key in its header. */
  keyHeaders: HeaderRecord
  readonly #route: GatewayRoute
  readonly #method: string
  readonly #events: Emitter<GatewayEvents>

  constructor(route: GatewayRoute, method: string, events: Emitter<GatewayEvents>, headers: HeaderRecord) {
    this.#route = route
    this.#method = method
    this.#events = events
    this.keyHeaders = headers
  }

  /** Count the outcome; `code` for a rejection, `wouldHave` for what observe mode would have answered. */
  finish(outcome: RouteOutcome, status: number | undefined, code?: string, wouldHave?: 'replayed' | 'rejected'): void {
    const route = this.#route
    route.stats.outcome(outcome, outcome === 'rejected' ? code : undefined)
    if (!this.#events.has('decision')) return
    const event: GatewayEvents['decision'] = {
      route: route.name,
      mode: route.mode,
      method: this.#method,
      outcome,
      status,
    }
    if (code !== undefined) event.code = code
    if (wouldHave !== undefined) event.wouldHave = wouldHave
    if (this.failedOpen) event.failedOpen = true
    // The key, read again only for listeners: a well-formed one, never a malformed header's text.
    const parsed = route.http === undefined ? undefined : parseKeyHeader(this.keyHeaders[route.http.header])
    if (parsed?.ok === true) event.key = parsed.key
    this.#events.emit('decision', event)
  }
}
