// Errors internal to the HTTP layer's dealings with the core and the adapters.

/** A request body over `maxRequestBytes`: answered with 413 before the store is touched. */
export class RequestTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The request body is over the ${limit}-byte limit`)
    this.name = 'RequestTooLargeError'
  }
}

/**
 * Thrown inside `Idempotency.run` to make it release the key: the response was a 5xx, or the
 * handler failed or its response broke off. Never reaches the client; `reason` is why.
 */
export class ReleaseSignal extends Error {
  constructor(readonly reason: unknown) {
    super('The response was not stored: the key is released for a retry')
    this.name = 'ReleaseSignal'
  }
}
