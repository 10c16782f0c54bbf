// The retry policy both client paths share (the fetch wrapper and the undici interceptor): which
// methods get a key, which answers and failures are retried with that same key, and how long to
// wait. Browser-safe: no node: imports, only what browsers and Node 20 both have (timers,
// globalThis.crypto).

import { IdempotentRequestError } from './errors.js'

/** Why an attempt is retried: the status it answered, or the error it failed with. */
export type RetryReason = { status: number; error?: undefined } | { status?: undefined; error: unknown }

/** What `onRetry` is told before each wait. */
export interface RetryEvent {
  /** The Idempotency-Key every attempt of this operation carries. */
  key: string
  /** The attempt that just failed, from 1. */
  attempt: number
  /** How long the client waits before the next attempt. */
  delayMs: number
  /** The status that attempt answered, when it answered. */
  status?: number | undefined
  /** The error that attempt failed with, when it did not answer. */
  error?: unknown
}

/** What the key function is given: enough to derive a key from the operation when the caller wants to. */
export interface KeyRequest {
  method: string
  url: string
}

export interface RetryPolicyOptions {
  /** Methods that get an Idempotency-Key and retries; default POST and PATCH. Others pass through untouched. */
  methods?: readonly string[]
  /** Attempts in all, the first included; default 5. 1 turns retries off (the key is still sent). */
  maxAttempts?: number
  /** First backoff ceiling; each retry doubles it (full jitter: a random wait below the ceiling). Default 100 ms. */
  baseDelayMs?: number
  /** Cap of any one wait, backoff or Retry-After; default 10 s. */
  maxDelayMs?: number
  /**
   * Time for one attempt to get its response headers; then that attempt is aborted and retried
   * with the same key. Default none.
   */
  attemptTimeoutMs?: number
  /** Time for the whole operation, waits included; no attempt starts or runs past it. Default none. */
  deadlineMs?: number
  /**
   * Statuses retried with the same key; default 409 (only with Retry-After: Idem's "in progress"),
   * 429, 500, 502, 503 and 504. A 409 without Retry-After is an application's conflict and is
   * returned. 400 and 422 are never retried: a retry would get the same answer.
   */
  retryStatuses?: readonly number[]
  /** The key of an operation that brings none; default `crypto.randomUUID()`. */
  key?: (request: KeyRequest) => string
  /** Called before each wait, e.g. to log or count retries. */
  onRetry?: (event: RetryEvent) => void
  /** Keys remembered with their request's fingerprint, to refuse one reused for another body; default 1000. */
  rememberKeys?: number
  /** Random source in [0, 1) for the jitter; tests pin it. */
  random?: () => number
}

export const DEFAULT_METHODS: readonly string[] = ['POST', 'PATCH']
export const DEFAULT_RETRY_STATUSES: readonly number[] = [409, 429, 500, 502, 503, 504]

/** One operation's progress: the attempts made and its deadline. */
export interface Operation {
  readonly key: string
  attempts: number
  readonly deadlineAt: number
}

export class RetryPolicy {
  readonly methods: ReadonlySet<string>
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly attemptTimeoutMs: number | undefined
  readonly deadlineMs: number | undefined
  readonly retryStatuses: ReadonlySet<number>
  readonly rememberKeys: number
  readonly #key: ((request: KeyRequest) => string) | undefined
  readonly #onRetry: ((event: RetryEvent) => void) | undefined
  readonly #random: () => number

  constructor(options: RetryPolicyOptions = {}) {
    this.methods = new Set((options.methods ?? DEFAULT_METHODS).map((method) => method.toUpperCase()))
    this.maxAttempts = positiveInteger('maxAttempts', options.maxAttempts ?? 5)
    this.baseDelayMs = nonNegative('baseDelayMs', options.baseDelayMs ?? 100)
    this.maxDelayMs = nonNegative('maxDelayMs', options.maxDelayMs ?? 10_000)
    this.attemptTimeoutMs =
      options.attemptTimeoutMs === undefined ? undefined : nonNegative('attemptTimeoutMs', options.attemptTimeoutMs)
    this.deadlineMs = options.deadlineMs === undefined ? undefined : nonNegative('deadlineMs', options.deadlineMs)
    this.retryStatuses = new Set(options.retryStatuses ?? DEFAULT_RETRY_STATUSES)
    this.rememberKeys = positiveInteger('rememberKeys', options.rememberKeys ?? 1000)
    this.#key = options.key
    this.#onRetry = options.onRetry
    this.#random = options.random ?? Math.random
  }

  covers(method: string): boolean {
    return this.methods.has(method.toUpperCase())
  }

  newKey(request: KeyRequest): string {
    return this.#key ? this.#key(request) : randomKey()
  }

  begin(key: string): Operation {
    return { key, attempts: 0, deadlineAt: this.deadlineMs === undefined ? Infinity : Date.now() + this.deadlineMs }
  }

  /** The time the next attempt may take to get its headers, or undefined for no limit. */
  attemptBudget(op: Operation): number | undefined {
    const left = op.deadlineAt - Date.now()
    if (this.attemptTimeoutMs === undefined) return Number.isFinite(left) ? Math.max(0, left) : undefined
    return Math.max(0, Math.min(this.attemptTimeoutMs, left))
  }

  /**
   * After attempt `op.attempts` answered `status`: the wait before the next attempt, or undefined
   * to keep this answer (not retryable, no attempt left, or the deadline would pass).
   */
  afterStatus(op: Operation, status: number, retryAfter: string | null | undefined): number | undefined {
    if (!this.retryStatuses.has(status)) return undefined
    const after = parseRetryAfter(retryAfter)
    // Idem's 409 (a request with this key is running) always says when to come back; a 409
    // without it is the application's own conflict, which a retry would only repeat.
    if (status === 409 && after === undefined) return undefined
    return this.#next(op, after, { status })
  }

  /** After attempt `op.attempts` failed with `error` (no answer): the wait before the next attempt, or undefined. */
  afterError(op: Operation, error: unknown): number | undefined {
    return this.#next(op, undefined, { error })
  }

  #next(op: Operation, retryAfterMs: number | undefined, reason: RetryReason): number | undefined {
    if (op.attempts >= this.maxAttempts) return undefined
    const delayMs = Math.min(this.maxDelayMs, retryAfterMs ?? this.backoff(op.attempts))
    // Waiting only to start an attempt the deadline would cut short is pointless: give up now.
    if (Date.now() + delayMs >= op.deadlineAt) return undefined
    this.#onRetry?.({ key: op.key, attempt: op.attempts, delayMs, status: reason.status, error: reason.error })
    return delayMs
  }

  /** The error of an operation that ends without a response: no attempt left, or no time left. */
  giveUp(op: Operation, cause: unknown): IdempotentRequestError {
    const deadline = op.attempts < this.maxAttempts || Date.now() >= op.deadlineAt
    return new IdempotentRequestError(
      deadline
        ? `No response for Idempotency-Key ${op.key} within the ${this.deadlineMs} ms deadline (${op.attempts} attempts)`
        : `No response for Idempotency-Key ${op.key} after ${op.attempts} attempts`,
      { key: op.key, attempts: op.attempts, reason: deadline ? 'deadline' : 'attempts-exhausted' },
      cause,
    )
  }

  /** Full jitter: a uniform wait below min(maxDelay, base × 2^(attempt−1)), so that clients that failed together spread out. */
  backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.max(0, attempt - 1))
    return Math.floor(this.#random() * ceiling)
  }
}

/** Retry-After as milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/**
 * A version 4 UUID. crypto.randomUUID exists in Node and in browsers' secure contexts only; an
 * insecure page (plain http on another host than localhost) still has getRandomValues.
 */
export function randomKey(): string {
  const crypto = globalThis.crypto
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`)
  return value
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number ≥ 0, not ${value}`)
  return value
}
