// The steps every way of running a function goes through: prepare the input (key, policy,
// fingerprint), answer from the local cache, settle a claim that did not acquire the key
// (replay, mismatch, in progress), and replay a stored outcome. `run`, `runMany` and
// `transaction` share one `Pipeline` per `Idempotency`; execute.ts adds what a lease needs.

import { setTimeout as sleep } from 'node:timers/promises'
import { toMs } from '../contract/duration.js'
import type { BeginResult, IdempotencyStore } from '../contract/types.js'
import { assertFingerprint } from '../contract/validate.js'
import {
  FingerprintMismatchError,
  IdempotencyError,
  InProgressError,
  StoredResultAuthenticationError,
  StoreUnavailableError,
} from '../errors.js'
import { type Decoded, decode } from './codec.js'
import { openWithoutKeys, ResultCipher } from './encryption.js'
import { type ErrorRegistry, errorRegistry } from './error-types.js'
import { EventHub } from './events.js'
import { fingerprintOf } from './fingerprint.js'
import { recordId, validateKey } from './key.js'
import type { LeaseKeeperHooks } from './lease-keeper.js'
import { ObservedStore } from './observed-store.js'
import {
  DEFAULTS,
  type IdempotencyOptions,
  overridesNothing,
  type PolicyOptions,
  pickPolicy,
  type ResolvedPolicy,
  type RunInput,
  resolvePolicy,
  samePolicy,
} from './options.js'
import { combineProbes, type Probe } from './probe.js'
import { ResultCache } from './result-cache.js'
import type { RunResult } from './run-context.js'

/** The names of one record: what every event carries. */
export interface Base {
  scope: string
  key: string
  id: string
}

/** A validated input: its record id, resolved policy and fingerprint. */
export interface Prepared {
  base: Base
  policy: ResolvedPolicy
  fingerprint: string
}

export type Acquired = Extract<BeginResult, { outcome: 'acquired' }>
/** A claim that found the key taken: completed, held by a live lease, or used with another payload. */
export type NotAcquired = Exclude<BeginResult, { outcome: 'acquired' }>

/** Beyond this many probes on one Idempotency, every one is called (each checks its own `enabled`). */
const MAX_MASKED_PROBES = 8

/** Longest pause between two polls of a key held by another worker. */
const MAX_POLL_MS = 250

export class Pipeline {
  /**
   * The store the steps call: the given one, or an `ObservedStore` over it while a probe times
   * store calls. The two hot calls, run()'s claim and the completion of an execution, go to
   * `givenStore` and are timed in place (an async wrapper per call cost about 0.5 µs on Node 20).
   */
  store: IdempotencyStore
  /** The store this `Idempotency` was given (what `idem.store` is, and what transaction mode looks into). */
  readonly givenStore: IdempotencyStore
  /** The attached probes as one; undefined (the common case) costs one check per hook. */
  probe: Probe | undefined
  #probes: Probe[] = []
  /** `activeProbe()`'s combinations, by the bit mask of the probes enabled. */
  #byMask: (Probe | undefined)[] = []
  /** The constructor's policy: a call that overrides nothing uses it as is. */
  readonly policy: ResolvedPolicy
  readonly maxResultBytes: number
  readonly cache: ResultCache | undefined
  readonly events = new EventHub()
  readonly errorTypes: ErrorRegistry | undefined
  /** The `encryption` option's keys; undefined (the default) stores outcomes as plain JSON. */
  readonly cipher: ResultCipher | undefined
  /** One set of hooks for every lease keeper; each keeper passes its claim's `Base`. */
  readonly keeperHooks: LeaseKeeperHooks<Base>
  /** Executions that ran without protection because the store failed and `failOpen` was set. */
  failOpenExecutions = 0
  /** The overrides of the last call that set some, and the policy they resolved to. */
  #lastOverrides: PolicyOptions | undefined
  #lastPolicy: ResolvedPolicy | undefined

  constructor(options: IdempotencyOptions) {
    if (options?.store === undefined) throw new TypeError('Idempotency needs a store: new Idempotency({ store })')
    this.store = options.store
    this.givenStore = options.store
    this.policy = resolvePolicy(options)
    this.maxResultBytes = options.maxResultBytes ?? DEFAULTS.maxResultBytes
    if (options.cache) {
      const ttl = options.cache.ttl === undefined ? Number.POSITIVE_INFINITY : toMs(options.cache.ttl, 'cache.ttl')
      this.cache = new ResultCache(options.cache.maxEntries, ttl)
    }
    this.errorTypes = errorRegistry(options.errorTypes)
    this.cipher = options.encryption === undefined ? undefined : new ResultCipher(options.encryption)
    this.keeperHooks = {
      onLost: (base) =>
        this.events.emit('lease_lost', { scope: base.scope, key: base.key, id: base.id, during: 'renewal' }),
      onStoreError: (base, error) =>
        this.events.emit('store_error', {
          scope: base.scope,
          key: base.key,
          id: base.id,
          operation: 'extend',
          error,
          failOpen: false,
        }),
    }
  }

  /** The attached probes as one, unless none of them has anything to do right now (`enabled`). */
  activeProbe(): Probe | undefined {
    const probes = this.#probes
    if (probes.length === 0) return undefined
    if (probes.length === 1) {
      const probe = probes[0] as Probe
      return probe.enabled === undefined || probe.enabled() ? probe : undefined
    }
    if (probes.length > MAX_MASKED_PROBES) return this.probe
    // The combination of the probes enabled now, made once per set of them: a tracer with no SDK
    // beside the metrics leaves the metrics' hooks alone, not a wrapper that calls both.
    let mask = 0
    for (let i = 0; i < probes.length; i++) {
      const probe = probes[i] as Probe
      if (probe.enabled === undefined || probe.enabled()) mask |= 1 << i
    }
    if (mask === 0) return undefined
    let combined = this.#byMask[mask]
    if (combined === undefined) {
      combined = combineProbes(probes.filter((_, i) => (mask & (1 << i)) !== 0)) as Probe
      this.#byMask[mask] = combined
    }
    return combined
  }

  /** Attach a probe; returns a function that detaches it. */
  instrument(probe: Probe): () => void {
    if (probe === null || typeof probe !== 'object') {
      throw new TypeError('instrument needs a probe: { storeCall?, aroundRun?, aroundExecution? }')
    }
    this.#probes = [...this.#probes, probe]
    this.#combine()
    return () => {
      this.#probes = this.#probes.filter((attached) => attached !== probe)
      this.#combine()
    }
  }

  #combine(): void {
    this.#byMask = []
    this.probe = combineProbes(this.#probes)
    this.store = this.probe?.storeCall === undefined ? this.givenStore : new ObservedStore(this.givenStore, this.probe)
  }

  prepare(input: RunInput): Prepared {
    const key = validateKey(input?.key)
    const policy = overridesNothing(input) ? this.policy : this.#resolve(input)
    const fingerprint = input.fingerprint ?? fingerprintOf(input.payload, policy.fingerprintFields)
    assertFingerprint(fingerprint)
    return { base: { scope: policy.scope, key, id: recordId(policy.scope, key) }, policy, fingerprint }
  }

  /**
   * The policy of a call that overrides options. A consumer passes the same overrides with every
   * message, so the last resolution is reused when every option is the same as last time (the
   * resolution depends on nothing else).
   */
  #resolve(input: RunInput): ResolvedPolicy {
    const last = this.#lastOverrides
    if (last !== undefined && samePolicy(input, last)) return this.#lastPolicy as ResolvedPolicy
    const policy = resolvePolicy(input, this.policy)
    this.#lastOverrides = pickPolicy(input)
    this.#lastPolicy = policy
    return policy
  }

  /** A cached outcome (or a mismatch with it), without a round trip. */
  cached<T>(p: Prepared): RunResult<T> | undefined {
    const { base, fingerprint } = p
    const cached = this.cache?.get(base.id, Date.now())
    if (cached === undefined) return undefined
    if (cached.fingerprint !== fingerprint) throw this.mismatch(base)
    if (this.events.has('replayed'))
      this.events.emit('replayed', { scope: base.scope, key: base.key, id: base.id, cached: true })
    return this.decode<T>(cached.stored, p)
  }

  /**
   * A claim that did not acquire the key, settled: the stored outcome replayed, or the error a
   * mismatch or a key in progress throws. A caller that waits for a key in progress (`waits`)
   * polls before it settles.
   */
  settle<T>(p: Prepared, begun: NotAcquired): RunResult<T> {
    const { base } = p
    switch (begun.outcome) {
      case 'completed':
        return this.replayed<T>(p, begun.result)
      case 'mismatch':
        throw this.mismatch(base)
      case 'in_progress':
        this.events.emit('in_progress', {
          scope: base.scope,
          key: base.key,
          id: base.id,
          retryAfterMs: begun.retryAfterMs,
          waiting: false,
        })
        throw new InProgressError(`"${base.key}" is being executed by another worker`, begun.retryAfterMs, {
          recordId: base.id,
        })
    }
  }

  /** A stored outcome read from the store: kept in the cache and replayed. */
  replayed<T>(p: Prepared, stored: string): RunResult<T> {
    const { base, policy, fingerprint } = p
    // Opened first: a result that does not authenticate is neither cached nor reported as replayed.
    const json = this.open(stored, p)
    this.cache?.set(base.id, fingerprint, stored, policy.ttlMs, Date.now())
    if (this.events.has('replayed'))
      this.events.emit('replayed', { scope: base.scope, key: base.key, id: base.id, cached: false })
    return decodeJson<T>(json, this.errorTypes, base.id)
  }

  /** An outcome just stored by this process, kept in the cache. */
  stored({ base, policy, fingerprint }: Prepared, stored: string): void {
    this.cache?.set(base.id, fingerprint, stored, policy.ttlMs, Date.now())
  }

  decode<T>(stored: string, p: Prepared): RunResult<T> {
    return decodeJson<T>(this.open(stored, p), this.errorTypes, p.base.id)
  }

  /**
   * The JSON of a stored outcome, opened when it is sealed (or encryption is on): a result that
   * does not authenticate for this record and request throws its typed error, never replays.
   */
  open(stored: string, { base, fingerprint }: Prepared): string {
    const cipher = this.cipher
    if (cipher !== undefined) return cipher.open(stored, base.id, fingerprint)
    // Plain JSON always starts with `{`: without encryption, this is the one check on the hot path.
    return stored.charCodeAt(0) === 0x7b ? stored : openWithoutKeys(stored, base.id)
  }

  mismatch(base: Base): FingerprintMismatchError {
    this.events.emit('mismatch', base)
    return new FingerprintMismatchError(`"${base.key}" was already used with a different payload`, {
      recordId: base.id,
    })
  }

  /** True when a key held by another worker is to be waited for, until `waitUntil` (local clock). */
  waits(policy: ResolvedPolicy, waitUntil: number): boolean {
    return policy.onInProgress === 'wait' && waitUntil - Date.now() > 0
  }

  /** Pauses before asking again for a key held by another worker; returns the next poll interval. */
  async pause(base: Base, retryAfterMs: number, waitUntil: number, pollMs: number): Promise<number> {
    const remaining = waitUntil - Date.now()
    this.events.emit('in_progress', { scope: base.scope, key: base.key, id: base.id, retryAfterMs, waiting: true })
    await sleep(Math.max(1, Math.min(pollMs, retryAfterMs, remaining)))
    return Math.min(pollMs * 2, MAX_POLL_MS)
  }

  /** True when `error` is stored as the outcome (the `isFinal` policy); a throwing `isFinal` says no. */
  isFinal(policy: ResolvedPolicy, error: unknown): boolean {
    try {
      return policy.isFinal(error) === true
    } catch {
      return false
    }
  }

  /** The function ran for `durationMs` and its outcome (or its `isFinal` error, `failed`) was stored. */
  executed(base: Base, attempt: number, durationMs: number, failed: boolean): void {
    if (this.events.has('executed')) {
      this.events.emit('executed', { scope: base.scope, key: base.key, id: base.id, attempt, durationMs, failed })
    }
  }
}

function decodeJson<T>(json: string, errorTypes: ErrorRegistry | undefined, id: string): RunResult<T> {
  let decoded: Decoded
  try {
    decoded = decode(json, errorTypes)
  } catch (cause) {
    throw new StoredResultAuthenticationError(
      `The stored result of ${JSON.stringify(id)} is not an outcome Idem stored and is not replayed: ${(cause as Error).message}`,
      { recordId: id, cause },
    )
  }
  if (!decoded.ok) throw decoded.error
  return { status: 'replayed', value: decoded.value as T }
}

/** The first poll interval of a caller that waits for a key in progress. */
export const FIRST_POLL_MS = 10

/**
 * An error that says something about the call, not about the store's health: Idem's own (other
 * than STORE_UNAVAILABLE) and the TypeError/RangeError with which stores reject bad arguments.
 * Such an error is thrown as it is, never turned into STORE_UNAVAILABLE or a fail-open execution.
 */
export function isCallerError(error: unknown): boolean {
  if (error instanceof IdempotencyError) return !(error instanceof StoreUnavailableError)
  return error instanceof TypeError || error instanceof RangeError
}
