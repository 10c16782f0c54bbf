// Every error the HTTP layer answers with: RFC 9457 problem details (application/problem+json),
// one stable `type` per case so that clients can branch on it rather than on prose.

import type { HttpResponse } from './types.js'

export const Problem = {
  MISSING_KEY: { slug: 'missing-key', status: 400, title: 'Idempotency-Key is missing' },
  INVALID_KEY: { slug: 'invalid-key', status: 400, title: 'Idempotency-Key is malformed' },
  IN_PROGRESS: { slug: 'in-progress', status: 409, title: 'A request with this Idempotency-Key is in progress' },
  KEY_REUSED: {
    slug: 'key-reused',
    status: 422,
    title: 'This Idempotency-Key was used for a different request',
  },
  REQUEST_TOO_LARGE: { slug: 'request-too-large', status: 413, title: 'The request body is too large' },
  RESPONSE_NOT_STORED: {
    slug: 'response-not-stored',
    status: 500,
    title: 'The request was executed but its response was not stored',
  },
  STORE_UNAVAILABLE: { slug: 'store-unavailable', status: 503, title: 'Idempotency is unavailable' },
} as const
export type ProblemKind = (typeof Problem)[keyof typeof Problem]

/** Default prefix of every `type`: a URN, stable and not tied to a host. */
export const DEFAULT_PROBLEM_TYPE_BASE = 'urn:idem:problem:'

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  [extension: string]: unknown
}

export function problemResponse(
  base: string,
  kind: ProblemKind,
  detail: string,
  extra: { headers?: Array<[string, string]>; members?: Record<string, unknown> } = {},
): HttpResponse {
  const body: ProblemBody = { type: base + kind.slug, title: kind.title, status: kind.status, detail, ...extra.members }
  return {
    status: kind.status,
    headers: [['content-type', 'application/problem+json'], ...(extra.headers ?? [])],
    body: Buffer.from(JSON.stringify(body)),
  }
}
