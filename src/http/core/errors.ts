// Errors of the HTTP layer's dealings with the core and the adapters.

import { ErrorCode, IdempotencyError } from '../../errors.js'

/**
 * A request body over `maxRequestBytes`: answered with 413 (`request-too-large`) before the
 * store is touched.
 */
export class RequestTooLargeError extends IdempotencyError {
  /** The `maxRequestBytes` the body went over. */
  readonly limit: number

  constructor(limit: number) {
    super(ErrorCode.REQUEST_TOO_LARGE, `The request body is over the ${limit}-byte limit`)
    this.name = 'RequestTooLargeError'
    this.limit = limit
  }
}

/**
 * Thrown inside `Idempotency.run` to make it release the key: the response was a 5xx, or the
 * handler failed or its response broke off. Control flow, never thrown to the application nor
 * answered to a client; `reason` is why (the `released` event carries it).
 */
export class ReleaseSignal extends Error {
  constructor(readonly reason: unknown) {
    super('The response was not stored: the key is released for a retry')
    this.name = 'ReleaseSignal'
  }
}
