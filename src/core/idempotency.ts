// The core: claim a key, run the function once, store its outcome, replay it to duplicates.

import { setTimeout as sleep } from 'node:timers/promises'
import { toMs } from '../contract/duration.js'
import type { BeginResult, IdempotencyStore } from '../contract/types.js'
import { assertFingerprint } from '../contract/validate.js'
import { FingerprintMismatchError, InProgressError, LeaseLostError, StoreUnavailableError } from '../errors.js'
import type { SqlDatabase } from '../sql/executor.js'
import { encodeError, encodeValue } from './codec.js'
import { EventHub, type IdempotencyEventName, type IdempotencyListener } from './events.js'
import { fingerprintOf, sha256 } from './fingerprint.js'
import { recordId, validateKey } from './key.js'
import { ExecutionContext, LeaseKeeper, type LeaseKeeperHooks } from './lease-keeper.js'
import {
  DEFAULTS,
  type IdempotencyOptions,
  overridesNothing,
  type ResolvedPolicy,
  type RunInput,
  resolvePolicy,
} from './options.js'
import { ResultCache } from './result-cache.js'
import {
  type Acquired,
  type Base,
  type Complete,
  type CoreDeps,
  completeOutcome,
  isCallerError,
  type Prepared,
  replay,
  runMany,
} from './run-many.js'
import {
  runInTransaction,
  type TransactionContext,
  type TransactionInput,
  type TransactionOutcome,
} from './transaction.js'

export interface RunContext {
  key: string
  scope: string
  /** 1 for the first claim of this key, +1 for each takeover after a lapsed lease. */
  attempt: number
  /** True when this execution took over from a worker whose lease lapsed. */
  recovered: boolean
  /** Aborted (with a `LeaseLostError`) when the claim is lost while the function runs. */
  signal: AbortSignal
  /** A stable key for an outbound call (pass it to a payment API's own Idempotency-Key). */
  derivedKey(name: string): string
}

export interface RunResult<T> {
  status: 'executed' | 'replayed'
  value: T
  /** True when the store failed and the function ran unprotected because of `failOpen`. */
  failedOpen?: true
}

export class Idempotency {
  readonly store: IdempotencyStore
  readonly #policy: ResolvedPolicy
  readonly #maxResultBytes: number
  readonly #cache: ResultCache | undefined
  readonly #events = new EventHub()
  #failOpenExecutions = 0
  /** What `runMany` and the shared completion path use of this instance. */
  readonly #deps: CoreDeps
  readonly #complete: Complete
  /** One set of hooks for every lease keeper of this instance; each keeper passes its claim's `Base`. */
  readonly #keeperHooks: LeaseKeeperHooks<Base>
  /** The last policy resolved for a run that overrides some option, and the overrides it came from. */
  #lastOverrides: RunInput | undefined
  #lastPolicy: ResolvedPolicy | undefined

  constructor(options: IdempotencyOptions) {
    if (options?.store === undefined) throw new TypeError('Idempotency needs a store: new Idempotency({ store })')
    this.store = options.store
    this.#policy = resolvePolicy(options)
    this.#maxResultBytes = options.maxResultBytes ?? DEFAULTS.maxResultBytes
    if (options.cache) {
      const ttl = options.cache.ttl === undefined ? Number.POSITIVE_INFINITY : toMs(options.cache.ttl, 'cache.ttl')
      this.#cache = new ResultCache(options.cache.maxEntries, ttl)
    }
    this.#deps = {
      store: this.store,
      cache: this.#cache,
      events: this.#events,
      countFailOpen: () => this.#failOpenExecutions++,
      prepare: (input) => this.#prepare(input),
      cached: (p) => this.#cached(p),
      execute: (p, begun, fn, complete) => this.#execute(p, begun, fn, complete),
      storeDown: (p, operation, error, fn) => this.#storeDown(p.base, p.policy, operation, error, fn),
      mismatch: (base) => this.#mismatch(base),
      run: (input, fn) => this.run(input, fn),
    }
    this.#complete = (p, token, stored, value) => completeOutcome(this.#deps, p, token, stored, value)
    this.#keeperHooks = {
      onLost: (base) => this.#events.emit('lease_lost', { ...base, during: 'renewal' }),
      onStoreError: (base, error) =>
        this.#events.emit('store_error', { ...base, operation: 'extend', error, failOpen: false }),
    }
  }

  /** Executions that ran without protection because the store failed and `failOpen` was set. */
  get failOpenExecutions(): number {
    return this.#failOpenExecutions
  }

  on<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): () => void {
    return this.#events.on(name, listener)
  }

  off<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): void {
    this.#events.off(name, listener)
  }

  /** True when `run` stores `error` as the outcome (its `isFinal` policy) instead of releasing the claim. */
  isFinal(error: unknown): boolean {
    return isFinalError(this.#policy, error)
  }

  /** The record id a (scope, key) pair is stored under. */
  recordId(key: string, scope = this.#policy.scope): string {
    return recordId(validateKey(scope, 'scope'), validateKey(key))
  }

  /**
   * Run `fn` at most once per (scope, key) while its record is retained. A duplicate receives the
   * stored outcome (`status: 'replayed'`); a duplicate of a running call gets `IN_PROGRESS` or waits.
   */
  async run<T>(input: RunInput, fn: (ctx: RunContext) => Promise<T> | T): Promise<RunResult<T>> {
    const p = this.#prepare(input)
    const { base, policy, fingerprint } = p
    const { key, id } = base
    const cached = this.#cached<T>(p)
    if (cached !== undefined) return cached

    const waitUntil = Date.now() + policy.waitTimeoutMs
    let pollMs = 10
    for (;;) {
      let begun: BeginResult
      try {
        begun = await this.store.begin(id, fingerprint, policy.leaseMs, policy.ttlMs)
      } catch (error) {
        if (isCallerError(error)) throw error
        return this.#storeDown(base, policy, 'begin', error, fn)
      }
      switch (begun.outcome) {
        case 'acquired':
          if (begun.recovered) this.#events.emit('takeover', { ...base, attempt: begun.attempt })
          return this.#execute(p, begun, fn, this.#complete)
        case 'completed':
          this.#cache?.set(id, fingerprint, begun.result, policy.ttlMs, Date.now())
          if (this.#events.has('replayed')) this.#events.emit('replayed', { ...base, cached: false })
          return replay<T>(begun.result)
        case 'mismatch':
          throw this.#mismatch(base)
        case 'in_progress': {
          const remaining = waitUntil - Date.now()
          const waiting = policy.onInProgress === 'wait' && remaining > 0
          this.#events.emit('in_progress', { ...base, retryAfterMs: begun.retryAfterMs, waiting })
          if (!waiting) {
            throw new InProgressError(`"${key}" is being executed by another worker`, begun.retryAfterMs, {
              recordId: id,
            })
          }
          await sleep(Math.max(1, Math.min(pollMs, begun.retryAfterMs, remaining)))
          pollMs = Math.min(pollMs * 2, 250)
        }
      }
    }
  }

  /**
   * `run` for many inputs at once: the keys are claimed in one store round trip (`beginMany`) and
   * the outcomes stored in few (`completeMany`). Returns one promise per input, in order, each
   * settling as `run` would; `fn` gets the input's index. An id given twice runs its later copy
   * after the first settled (so it replays).
   */
  runMany<T>(
    inputs: readonly RunInput[],
    fn: (ctx: RunContext, index: number) => Promise<T> | T,
  ): Promise<RunResult<T>>[] {
    return runMany(this.#deps, inputs, fn)
  }

  #prepare(input: RunInput): Prepared {
    const key = validateKey(input?.key)
    const policy = overridesNothing(input) ? this.#policy : this.#resolve(input)
    const fingerprint = input.fingerprint ?? fingerprintOf(input.payload, policy.fingerprintFields)
    assertFingerprint(fingerprint)
    return { base: { scope: policy.scope, key, id: recordId(policy.scope, key) }, policy, fingerprint }
  }

  /**
   * The policy of a run that overrides options. A consumer passes the same overrides with every
   * message, so the last resolution is reused when every option is the same as last time (the
   * resolution depends on nothing else).
   */
  #resolve(input: RunInput): ResolvedPolicy {
    const last = this.#lastOverrides
    if (
      last !== undefined &&
      this.#lastPolicy !== undefined &&
      input.scope === last.scope &&
      input.ttl === last.ttl &&
      input.lease === last.lease &&
      input.fingerprintFields === last.fingerprintFields &&
      input.onInProgress === last.onInProgress &&
      input.waitTimeout === last.waitTimeout &&
      input.isFinal === last.isFinal &&
      input.failOpen === last.failOpen
    ) {
      return this.#lastPolicy
    }
    const policy = resolvePolicy(input, this.#policy)
    this.#lastOverrides = {
      key: '',
      scope: input.scope,
      ttl: input.ttl,
      lease: input.lease,
      fingerprintFields: input.fingerprintFields,
      onInProgress: input.onInProgress,
      waitTimeout: input.waitTimeout,
      isFinal: input.isFinal,
      failOpen: input.failOpen,
    }
    this.#lastPolicy = policy
    return policy
  }

  #cached<T>({ base, fingerprint }: Prepared): RunResult<T> | undefined {
    const cached = this.#cache?.get(base.id, Date.now())
    if (cached === undefined) return undefined
    if (cached.fingerprint !== fingerprint) throw this.#mismatch(base)
    if (this.#events.has('replayed')) this.#events.emit('replayed', { ...base, cached: true })
    return replay<T>(cached.stored)
  }

  /**
   * Transaction mode (inbox): claim the key, run `fn` and store its outcome in one transaction of
   * your database, so the record and your writes commit together or not at all. `db` comes from
   * an adapter (`fromPg`, `fromMysql2`, `fromBetterSqlite3`, `fromKysely`, `fromKnex`,
   * `fromDrizzle`); `fn` receives that transaction's handle. Needs a SQL store on the same database.
   */
  transaction<Tx, T>(
    db: SqlDatabase<Tx>,
    input: TransactionInput,
    fn: (tx: Tx, ctx: TransactionContext) => Promise<T> | T,
  ): Promise<TransactionOutcome<T>> {
    return runInTransaction(
      {
        store: this.store,
        resolve: (options) => (overridesNothing(options) ? this.#policy : resolvePolicy(options, this.#policy)),
        maxResultBytes: this.#maxResultBytes,
        events: this.#events,
        cache: this.#cache,
        derivedKey,
      },
      db,
      input,
      fn,
    )
  }

  async #execute<T>(
    p: Prepared,
    { token, attempt, recovered }: Acquired,
    fn: (ctx: RunContext) => Promise<T> | T,
    complete: Complete,
  ): Promise<RunResult<T>> {
    const { base, policy } = p
    const { id } = base
    const keeper = new LeaseKeeper(this.store, id, token, policy.leaseMs, this.#keeperHooks, base)
    const startedAt = performance.now()
    const ctx: RunContext = new ExecutionContext(base, attempt, recovered, keeper, (name) => derivedKey(id, name))
    let value: T
    try {
      value = await fn(ctx)
    } catch (error) {
      keeper.stop()
      if (isFinalError(policy, error)) {
        const stored = encodeError(error, this.#maxResultBytes, id)
        await complete(p, token, stored, error)
        this.#events.emit('executed', { ...base, attempt, durationMs: performance.now() - startedAt, failed: true })
        throw error
      }
      await this.store.release(id, token).then(
        () => this.#events.emit('released', { ...base, error }),
        (releaseError: unknown) => {
          // The claim lapses on its own; a retry takes over after the lease.
          if (releaseError instanceof LeaseLostError) {
            this.#events.emit('lease_lost', { ...base, during: 'complete' })
          } else {
            this.#events.emit('store_error', { ...base, operation: 'release', error: releaseError, failOpen: false })
          }
        },
      )
      throw error
    }
    keeper.stop()
    let stored: string
    try {
      stored = encodeValue(value, this.#maxResultBytes, id)
    } catch (error) {
      // The function ran: store the failure as final so that a duplicate does not run it again,
      // and hand the caller its value on the error (attached after encoding, never stored).
      const storedError = encodeError(error, this.#maxResultBytes, id)
      ;(error as { value?: unknown }).value = value
      await complete(p, token, storedError, value)
      throw error
    }
    await complete(p, token, stored, value)
    if (this.#events.has('executed')) {
      this.#events.emit('executed', { ...base, attempt, durationMs: performance.now() - startedAt, failed: false })
    }
    return { status: 'executed', value }
  }

  async #storeDown<T>(
    base: Base,
    policy: ResolvedPolicy,
    operation: string,
    error: unknown,
    fn: (ctx: RunContext) => Promise<T> | T,
  ): Promise<RunResult<T>> {
    this.#events.emit('store_error', { ...base, operation, error, failOpen: policy.failOpen })
    if (!policy.failOpen) {
      throw new StoreUnavailableError(
        `Idempotency store failed during ${operation}: ${(error as Error)?.message ?? error}`,
        {
          recordId: base.id,
          cause: error,
        },
      )
    }
    this.#failOpenExecutions++
    const ctx: RunContext = {
      key: base.key,
      scope: base.scope,
      attempt: 1,
      recovered: false,
      signal: new AbortController().signal,
      derivedKey: (name) => derivedKey(base.id, name),
    }
    return { status: 'executed', value: await fn(ctx), failedOpen: true }
  }

  #mismatch(base: Base): FingerprintMismatchError {
    this.#events.emit('mismatch', base)
    return new FingerprintMismatchError(`"${base.key}" was already used with a different payload`, {
      recordId: base.id,
    })
  }
}

function isFinalError(policy: ResolvedPolicy, error: unknown): boolean {
  try {
    return policy.isFinal(error) === true
  } catch {
    return false
  }
}

/** Stable across retries and takeovers; differs per (scope, key, name). */
export function derivedKey(id: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('derivedKey needs a non-empty name')
  return `idem_${sha256(`${id.length}:${id}:${name}`).slice(0, 32)}`
}
