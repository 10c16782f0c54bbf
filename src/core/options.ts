// Options of `Idempotency` and of each `run`, and their resolution into plain numbers.

import { type Duration, toMs } from '../contract/duration.js'
import type { IdempotencyStore } from '../contract/types.js'
import { DEFAULT_MAX_RESULT_BYTES } from '../contract/validate.js'
import type { EncryptionOptions } from './encryption.js'
import type { ErrorTypes } from './error-types.js'
import { validateKey } from './key.js'

export type InProgressBehaviour = 'reject' | 'wait'

/** Options that a single `run` may override. */
export interface PolicyOptions {
  /** Namespace of the key: a tenant or principal plus an operation. Default `'default'`. */
  scope?: string
  /** How long a completed record is kept (retention). Default `'24h'`. */
  ttl?: Duration
  /** How long an in-progress claim is honoured without renewal. Default `'30s'`. */
  lease?: Duration
  /** Fingerprint only these dotted paths of the payload (e.g. `['amount', 'order.id']`). */
  fingerprintFields?: readonly string[]
  /** A duplicate of a running call: throw `IN_PROGRESS` (default) or wait for the outcome. */
  onInProgress?: InProgressBehaviour
  /** How long `onInProgress: 'wait'` waits before it throws `IN_PROGRESS`. Default: the lease. */
  waitTimeout?: Duration
  /** Errors that are stored and replayed to duplicates instead of released for a retry. */
  isFinal?: (error: unknown) => boolean
  /** Run the function without protection when the store fails (counted and reported). Default false. */
  failOpen?: boolean
}

export interface CacheOptions {
  /** Most completed outcomes kept in this process. */
  maxEntries: number
  /** Longest an entry is kept, capped by the record's own ttl. Default: the record's ttl. */
  ttl?: Duration
}

export interface IdempotencyOptions extends PolicyOptions {
  store: IdempotencyStore
  /** Largest stored outcome, in UTF-8 bytes of what is stored: its JSON, or with `encryption` the encrypted form. Default 1 MiB. */
  maxResultBytes?: number
  /** Serve replays of completed keys from a bounded local cache, with zero round trips. Off by default. */
  cache?: CacheOptions | false
  /**
   * Your error classes, so that a replayed `isFinal` error is an instance of its class again.
   *
   * An `isFinal` error is stored as JSON: its `name`, `message` and the own properties that JSON
   * can hold (`code`, `status`, `details`…; never `stack` or `cause`). Without this option a
   * duplicate receives a plain `Error` with that name, message and those properties (an
   * `IdempotencyError` for Idem's own codes), so `instanceof CardDeclinedError` is false on
   * redelivery. With it, a stored error whose `name` is registered comes back as an instance of
   * that class (same prototype, hence `instanceof` and methods), with its stored properties; the
   * class's constructor is not called. Every replayed error has a non-enumerable `replayed: true`.
   *
   * A class in a list is registered under the `name` its errors carry: a `name` on its prototype,
   * or else its class name (give your errors `this.name = 'CardDeclinedError'`, as most do). A
   * record maps stored names to classes explicitly. Applies to `run`, `runMany` and `transaction`.
   *
   * @example
   * ```ts
   * class CardDeclinedError extends Error {
   *   name = 'CardDeclinedError'
   *   constructor(readonly reason: string) { super(`card declined: ${reason}`) }
   * }
   * const idem = new Idempotency({
   *   store,
   *   isFinal: (error) => error instanceof CardDeclinedError,
   *   errorTypes: [CardDeclinedError],
   * })
   * // first delivery and every duplicate alike:
   * await idem.run({ key }, charge).catch((error) => error instanceof CardDeclinedError) // true
   * ```
   */
  errorTypes?: ErrorTypes
  /**
   * Encrypt every stored outcome at rest (AES-256-GCM), under `current` of the listed `keys`;
   * results stay readable under any key still listed. The record id and the fingerprint are
   * authenticated with it, so a result copied to another record or request is refused
   * (`STORED_RESULT_AUTHENTICATION_FAILED`), never replayed. `maxResultBytes` applies to the
   * encrypted form (about 4/3 of the JSON plus 44 bytes and the key id). Off by default.
   *
   * @example
   * ```ts
   * const idem = new Idempotency({
   *   store,
   *   encryption: { keys: { k2: process.env.IDEM_KEY_K2!, k1: process.env.IDEM_KEY_K1! }, current: 'k2' },
   * })
   * ```
   */
  encryption?: EncryptionOptions
}

export interface RunInput extends PolicyOptions {
  /** The idempotency key: printable ASCII, 1–255 characters. */
  key: string
  /** The request; its canonical JSON is fingerprinted, so reusing the key for another payload is caught. */
  payload?: unknown
  /** An explicit fingerprint, instead of one computed from `payload`. */
  fingerprint?: string
  /**
   * Where the call comes from, for probes only (never stored, never fingerprinted): the consumer
   * passes the delivery and the HTTP layer the request, so a tracer continues the trace context
   * their headers carry.
   */
  origin?: CallOrigin
}

/** The message or request a call comes from, as a probe sees it. */
export interface CallOrigin {
  /** Its headers (W3C `traceparent`, `tracestate`, …), read only when a probe asks. */
  headers?(): Readonly<Record<string, string | undefined>>
}

export interface ResolvedPolicy {
  scope: string
  ttlMs: number
  leaseMs: number
  fingerprintFields: readonly string[] | undefined
  onInProgress: InProgressBehaviour
  waitTimeoutMs: number
  isFinal: (error: unknown) => boolean
  failOpen: boolean
}

const neverFinal = (): boolean => false

export function resolvePolicy(options: PolicyOptions, base?: ResolvedPolicy): ResolvedPolicy {
  const leaseMs = options.lease === undefined ? (base?.leaseMs ?? 30_000) : toMs(options.lease, 'lease')
  const onInProgress = options.onInProgress ?? base?.onInProgress ?? 'reject'
  if (onInProgress !== 'reject' && onInProgress !== 'wait') {
    throw new RangeError(`onInProgress must be 'reject' or 'wait', got ${JSON.stringify(onInProgress)}`)
  }
  return {
    scope: options.scope === undefined ? (base?.scope ?? 'default') : validateKey(options.scope, 'scope'),
    ttlMs: options.ttl === undefined ? (base?.ttlMs ?? 86_400_000) : toMs(options.ttl, 'ttl'),
    leaseMs,
    fingerprintFields: options.fingerprintFields ?? base?.fingerprintFields,
    onInProgress,
    waitTimeoutMs:
      options.waitTimeout === undefined ? (base?.waitTimeoutMs ?? leaseMs) : toMs(options.waitTimeout, 'waitTimeout'),
    isFinal: options.isFinal ?? base?.isFinal ?? neverFinal,
    failOpen: options.failOpen ?? base?.failOpen ?? false,
  }
}

/**
 * Every option a single call may override, written once: resolution, the last-policy cache, the
 * consumer and the HTTP layer derive their copies from this list, so a new option is one edit here
 * (and the type check below fails until it is listed).
 */
export const POLICY_FIELDS = [
  'scope',
  'ttl',
  'lease',
  'fingerprintFields',
  'onInProgress',
  'waitTimeout',
  'isFinal',
  'failOpen',
] as const satisfies readonly (keyof PolicyOptions)[]

type UnlistedPolicyField = Exclude<keyof PolicyOptions, (typeof POLICY_FIELDS)[number]>
const everyPolicyFieldListed: [UnlistedPolicyField] extends [never] ? true : UnlistedPolicyField = true
void everyPolicyFieldListed

/** The policy options `source` sets (those not undefined), copied into a fresh object. */
export function pickPolicy(source: PolicyOptions): PolicyOptions {
  const picked: Record<string, unknown> = {}
  for (const field of POLICY_FIELDS) if (source[field] !== undefined) picked[field] = source[field]
  return picked as PolicyOptions
}

/** True when `a` and `b` set every policy option to the same value (by identity). */
export function samePolicy(a: PolicyOptions, b: PolicyOptions): boolean {
  for (const field of POLICY_FIELDS) if (a[field] !== b[field]) return false
  return true
}

/** True when a run overrides nothing, so the constructor's resolved policy can be reused as is. */
export function overridesNothing(input: PolicyOptions): boolean {
  for (const field of POLICY_FIELDS) if (input[field] !== undefined) return false
  return true
}

export const DEFAULTS = { maxResultBytes: DEFAULT_MAX_RESULT_BYTES } as const
