// The problems only the gateway answers (RFC 9457 application/problem+json, the same `type`
// prefix as the HTTP layer's): an upstream that fails or is too slow, a rate limit, a request
// whose signature or token does not hold.

import { DEFAULT_PROBLEM_TYPE_BASE } from '../http/core/problems.js'
import type { HttpResponse } from '../http/core/types.js'

export interface GatewayProblemKind {
  readonly slug: string
  readonly status: number
  readonly title: string
}

/** Every problem the gateway itself answers, by name. */
export const GatewayProblem = {
  UPSTREAM_UNAVAILABLE: { slug: 'upstream-unavailable', status: 502, title: 'The upstream could not be reached' },
  UPSTREAM_TIMEOUT: { slug: 'upstream-timeout', status: 504, title: 'The upstream did not answer in time' },
  RATE_LIMITED: { slug: 'rate-limited', status: 429, title: 'Too many requests' },
  UNAUTHENTICATED: { slug: 'unauthenticated', status: 401, title: 'The request could not be authenticated' },
  BAD_SIGNATURE: { slug: 'bad-signature', status: 401, title: 'The request signature is missing, stale or wrong' },
  NONCE_REUSED: { slug: 'nonce-reused', status: 409, title: 'This request nonce was already used' },
  STORE_UNAVAILABLE: { slug: 'store-unavailable', status: 503, title: 'Idempotency is unavailable' },
} as const satisfies Record<string, GatewayProblemKind>

/** The problem+json response for `kind`, with `detail` and extra headers (Retry-After). */
export function gatewayProblem(
  kind: GatewayProblemKind,
  detail: string,
  headers: ReadonlyArray<[string, string]> = [],
): HttpResponse {
  const body = JSON.stringify({
    type: `${DEFAULT_PROBLEM_TYPE_BASE}${kind.slug}`,
    title: kind.title,
    status: kind.status,
    detail,
  })
  return {
    status: kind.status,
    headers: [['content-type', 'application/problem+json'], ...headers],
    body: Buffer.from(body),
  }
}
