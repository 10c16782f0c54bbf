// Every error the HTTP layer answers with: RFC 9457 problem details (application/problem+json),
// one stable `type` per case so that clients can branch on it rather than on prose. The answer
// is derived from the error alone: its `code` picks the `type` and title below, its `status`
// (src/errors.ts, the one status table) is the HTTP status.

import { ErrorCode, IdempotencyError } from '../../errors.js'
import type { HttpResponse } from './types.js'

interface Presentation {
  readonly slug: string
  readonly title: string
}

const NOT_STORED: Presentation = {
  slug: 'response-not-stored',
  title: 'The request was executed but its response was not stored',
}

/** A stored response that cannot be read back (encryption at rest): never replayed, never run again. */
const UNREADABLE: Presentation = {
  slug: 'stored-response-unreadable',
  title: 'The stored response for this Idempotency-Key cannot be read',
}

/** The `type` slug and title of each code the HTTP layer answers; any other error is the framework's. */
const ANSWERED = {
  MISSING_KEY: { slug: 'missing-key', title: 'Idempotency-Key is missing' },
  INVALID_KEY: { slug: 'invalid-key', title: 'Idempotency-Key is malformed' },
  IN_PROGRESS: { slug: 'in-progress', title: 'A request with this Idempotency-Key is in progress' },
  FINGERPRINT_MISMATCH: { slug: 'key-reused', title: 'This Idempotency-Key was used for a different request' },
  REQUEST_TOO_LARGE: { slug: 'request-too-large', title: 'The request body is too large' },
  // The handler ran, but what it answered could not be kept: its retries get this instead.
  RESULT_TOO_LARGE: NOT_STORED,
  RESULT_NOT_SERIALIZABLE: NOT_STORED,
  STORE_UNAVAILABLE: { slug: 'store-unavailable', title: 'Idempotency is unavailable' },
  ENCRYPTION_KEY_UNKNOWN: UNREADABLE,
  STORED_RESULT_AUTHENTICATION_FAILED: UNREADABLE,
  STORED_RESULT_NOT_ENCRYPTED: UNREADABLE,
} as const satisfies Partial<Record<ErrorCode, Presentation>>

/** An error the HTTP layer answers with a problem. */
export type AnsweredError = IdempotencyError & { readonly code: keyof typeof ANSWERED }

export function isAnswered(error: unknown): error is AnsweredError {
  return error instanceof IdempotencyError && Object.hasOwn(ANSWERED, error.code)
}

export interface ProblemKind {
  slug: string
  status: number
  title: string
}

function kind(code: keyof typeof ANSWERED): ProblemKind {
  return { ...ANSWERED[code], status: new IdempotencyError(code, code).status }
}

/** The problems the HTTP layer answers, by name: a view of the table above, for clients and tests. */
export const Problem = {
  MISSING_KEY: kind(ErrorCode.MISSING_KEY),
  INVALID_KEY: kind(ErrorCode.INVALID_KEY),
  IN_PROGRESS: kind(ErrorCode.IN_PROGRESS),
  KEY_REUSED: kind(ErrorCode.FINGERPRINT_MISMATCH),
  REQUEST_TOO_LARGE: kind(ErrorCode.REQUEST_TOO_LARGE),
  RESPONSE_NOT_STORED: kind(ErrorCode.RESULT_TOO_LARGE),
  STORE_UNAVAILABLE: kind(ErrorCode.STORE_UNAVAILABLE),
  STORED_RESPONSE_UNREADABLE: kind(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED),
} as const satisfies Record<string, ProblemKind>

/** Default prefix of every `type`: a URN, stable and not tied to a host. */
export const DEFAULT_PROBLEM_TYPE_BASE = 'urn:idem:problem:'

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  [extension: string]: unknown
}

/** The problem response for `error` (one `isAnswered` accepts): `type` and title from its code, status from `error.status`. */
export function problemResponse(
  base: string,
  error: IdempotencyError,
  detail: string = error.message,
  headers: ReadonlyArray<[string, string]> = [],
): HttpResponse {
  if (!isAnswered(error)) throw new TypeError(`No problem is defined for the code ${error.code}`)
  const { slug, title } = ANSWERED[error.code]
  const status = error.status
  const body: ProblemBody = { type: base + slug, title, status, detail }
  return {
    status,
    headers: [['content-type', 'application/problem+json'], ...headers],
    body: Buffer.from(JSON.stringify(body)),
  }
}
