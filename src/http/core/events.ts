// What the HTTP core reports about each request it decided (`http.on('response', …)`), for
// metrics and logs: the route and status, never the key or the principal.

/**
 * How a request subject to idempotency ended: `executed` (the handler ran, its response stored),
 * `replayed` (a stored response sent again), `rejected` (a problem answered instead of the
 * handler: missing or malformed key, key in progress, reused with another payload, store down…),
 * `released` (the handler ran but its response was a 5xx or never completed, so the key was freed
 * for a retry), `no_key` (no key where one is optional: passed through unprotected).
 */
export type HttpOutcome = 'executed' | 'replayed' | 'rejected' | 'released' | 'no_key'

export interface HttpResponseEvent {
  /** Upper-case method. */
  method: string
  /** The route as the adapter described it (a template where the framework knows it, else the path). */
  route: string
  outcome: HttpOutcome
  /** The status sent; undefined when the handler's response never completed, or for `no_key`. */
  status: number | undefined
  /** For `rejected`: the problem's code (`IN_PROGRESS`, `FINGERPRINT_MISMATCH`, `MISSING_KEY`, …). */
  code?: string
}

export interface HttpEvents {
  response: HttpResponseEvent
}
