// idem/http: the framework-free HTTP core and the node:http adapter. Loads no framework.

export { RequestTooLargeError } from './core/errors.js'
export type { HttpEvents, HttpOutcome, HttpResponseEvent } from './core/events.js'
export { type HttpAdapterOptions, HttpIdempotency } from './core/http-idempotency.js'
export { type ParsedKey, parseKeyHeader } from './core/key-header.js'
export { HTTP_DEFAULTS, type HttpIdempotencyOptions } from './core/options.js'
export { DEFAULT_PROBLEM_TYPE_BASE, Problem, type ProblemBody, type ProblemKind } from './core/problems.js'
export {
  ANONYMOUS,
  authorizationPrincipal,
  bodyDigest,
  MIN_PRINCIPAL_SECRET_BYTES,
  principalKey,
  requestFingerprint,
  scopeOf,
} from './core/request-identity.js'
export { type CapturedResponse, type CaptureOutcome, ResponseCapture } from './core/response-capture.js'
export { DEFAULT_REPLAY_HEADERS, headerPairs, type StoredResponse } from './core/stored-response.js'
export type { Decision, HeaderRecord, HttpRequest, HttpResponse } from './core/types.js'
export { captureResponse, sendResponse } from './node/capture-response.js'
export { type NodeHandler, withIdempotency } from './node/node-handler.js'
export { readBody } from './node/read-body.js'
