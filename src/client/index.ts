// idem/client: the client side of the Idempotency-Key contract, one key per logical operation,
// reused on every retry. `idempotentFetch` is browser-safe; `idempotencyInterceptor` is for undici
// in Node and imports only undici's types, so a browser bundle of this entry never pulls undici in.

export {
  IdempotencyKeyReusedError,
  IdempotentRequestError,
  isKeyReusedProblem,
  type KeyReusedDetails,
  type ProblemDetails,
} from './errors.js'
export {
  type FetchLike,
  type IdempotencyInfo,
  type IdempotentFetch,
  type IdempotentFetchOptions,
  type IdempotentRequestInit,
  idempotencyInfo,
  idempotentFetch,
} from './fetch.js'
export {
  DEFAULT_METHODS,
  DEFAULT_RETRY_STATUSES,
  type KeyRequest,
  parseRetryAfter,
  type RetryEvent,
  RetryPolicy,
  type RetryPolicyOptions,
} from './policy.js'
export { type IdempotencyInterceptorOptions, idempotencyInterceptor } from './undici.js'
