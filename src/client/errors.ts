// The client's errors. A key reused for another request is a programming error, whether the client
// catches it before sending or the server answers 422 `key-reused`: it is thrown, never retried,
// and it is a FingerprintMismatchError (code FINGERPRINT_MISMATCH), the error Idem's core raises
// for the same mistake on the server side.

import { FingerprintMismatchError } from '../errors.js'

/** An RFC 9457 problem as Idem answers it (application/problem+json). */
export interface ProblemDetails {
  type?: string
  title?: string
  status?: number
  detail?: string
  [extension: string]: unknown
}

export interface KeyReusedDetails {
  key: string
  /** 'client': refused before sending (this client saw the key with another body); 'server': a 422 `key-reused`. */
  detectedBy: 'client' | 'server'
  /** The server's problem details (detectedBy 'server'). */
  problem?: ProblemDetails | undefined
}

export class IdempotencyKeyReusedError extends FingerprintMismatchError {
  readonly key: string
  readonly detectedBy: 'client' | 'server'
  readonly problem: ProblemDetails | undefined

  constructor(message: string, details: KeyReusedDetails) {
    super(message)
    this.name = 'IdempotencyKeyReusedError'
    this.key = details.key
    this.detectedBy = details.detectedBy
    this.problem = details.problem
  }
}

/** Why an operation ended without a response: its attempts all failed, or its deadline passed. */
export class IdempotentRequestError extends Error {
  readonly key: string
  readonly attempts: number
  readonly reason: 'attempts-exhausted' | 'deadline'

  constructor(
    message: string,
    details: { key: string; attempts: number; reason: 'attempts-exhausted' | 'deadline' },
    cause: unknown,
  ) {
    super(message, { cause })
    this.name = 'IdempotentRequestError'
    this.key = details.key
    this.attempts = details.attempts
    this.reason = details.reason
  }
}

/** The `type` slug Idem's middleware and gateway give a key reused for another request (under any type base). */
export function isKeyReusedProblem(problem: unknown): problem is ProblemDetails {
  if (problem === null || typeof problem !== 'object') return false
  const type = (problem as ProblemDetails).type
  return typeof type === 'string' && /(^|[:/])key-reused$/.test(type)
}

export function keyReusedByServer(key: string, problem: ProblemDetails): IdempotencyKeyReusedError {
  return new IdempotencyKeyReusedError(
    `The server refused Idempotency-Key ${JSON.stringify(key)}: it was used for a different request ` +
      `(${problem.detail ?? problem.title ?? 'key-reused'}); use a new key for a new operation`,
    { key, detectedBy: 'server', problem },
  )
}
