// `runMany`: `run` for a batch of keys. The claims are made in one store round trip (beginMany)
// and the completions gathered into few (completeMany); each key then settles on its own, exactly
// as `run` would. Also the completion path that `run` and `runMany` share.

import { setTimeout as sleep } from 'node:timers/promises'
import type { BeginResult, CompleteItem, IdempotencyStore } from '../contract/types.js'
import {
  type FingerprintMismatchError,
  IdempotencyError,
  InProgressError,
  LeaseLostError,
  StoreUnavailableError,
} from '../errors.js'
import { decode } from './codec.js'
import type { EventHub } from './events.js'
import type { RunContext, RunResult } from './idempotency.js'
import type { ResolvedPolicy, RunInput } from './options.js'
import type { ResultCache } from './result-cache.js'

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

/** Stores an outcome for the claim `token`; throws as `completeOutcome` does. */
export type Complete = (p: Prepared, token: string, stored: string, value: unknown) => Promise<void>

/** What `Idempotency` lends to the shared paths. */
export interface CoreDeps {
  store: IdempotencyStore
  cache: ResultCache | undefined
  events: EventHub
  countFailOpen(): void
  prepare(input: RunInput): Prepared
  /** A cached outcome (or a mismatch with it), without a round trip. */
  cached<T>(p: Prepared): RunResult<T> | undefined
  execute<T>(
    p: Prepared,
    begun: Acquired,
    fn: (ctx: RunContext) => Promise<T> | T,
    complete: Complete,
  ): Promise<RunResult<T>>
  storeDown<T>(
    p: Prepared,
    operation: string,
    error: unknown,
    fn: (ctx: RunContext) => Promise<T> | T,
  ): Promise<RunResult<T>>
  mismatch(base: Base): FingerprintMismatchError
  run<T>(input: RunInput, fn: (ctx: RunContext) => Promise<T> | T): Promise<RunResult<T>>
}

/** Attempts at storing an outcome before giving up on a failing store. */
const COMPLETE_ATTEMPTS = 3

export function runMany<T>(
  deps: CoreDeps,
  inputs: readonly RunInput[],
  fn: (ctx: RunContext, index: number) => Promise<T> | T,
): Promise<RunResult<T>>[] {
  const results: Promise<RunResult<T>>[] = []
  const claims = new Map<string, { index: number; p: Prepared }[]>()
  const firstOfId = new Map<string, number>()
  const repeats: { index: number; earlier: number }[] = []
  /** The group of the previous input: consecutive inputs almost always share one. */
  let last: { leaseMs: number; ttlMs: number; list: { index: number; p: Prepared }[] } | undefined
  inputs.forEach((input, index) => {
    let p: Prepared
    try {
      p = deps.prepare(input)
      const cached = deps.cached<T>(p)
      if (cached !== undefined) {
        results[index] = Promise.resolve(cached)
        return
      }
    } catch (error) {
      results[index] = Promise.reject(error)
      return
    }
    const earlier = firstOfId.get(p.base.id)
    if (earlier !== undefined) {
      repeats.push({ index, earlier })
      return
    }
    firstOfId.set(p.base.id, index)
    // beginMany takes one lease and ttl: inputs that differ in them are claimed in separate calls.
    const { leaseMs, ttlMs } = p.policy
    if (last === undefined || last.leaseMs !== leaseMs || last.ttlMs !== ttlMs) {
      const group = `${leaseMs}/${ttlMs}`
      let list = claims.get(group)
      if (list === undefined) {
        list = []
        claims.set(group, list)
      }
      last = { leaseMs, ttlMs, list }
    }
    last.list.push({ index, p })
  })
  const batch = new CompletionBatch(deps)
  for (const list of claims.values()) {
    const { leaseMs, ttlMs } = (list[0] as { p: Prepared }).p.policy
    const items = list.map(({ p }) => ({ id: p.base.id, fingerprint: p.fingerprint }))
    let begun: Promise<BeginResult[]>
    try {
      begun = deps.store.beginMany(items, leaseMs, ttlMs)
    } catch (error) {
      begun = Promise.reject(error)
    }
    list.forEach(({ index, p }, position) => {
      const run = (ctx: RunContext) => fn(ctx, index)
      results[index] = begun.then(
        (outcomes) =>
          settle(deps, inputs[index] as RunInput, p, outcomes[position] as BeginResult, run, batch.complete),
        (error: unknown) => {
          if (isCallerError(error)) throw error
          return deps.storeDown(p, 'beginMany', error, run)
        },
      )
    })
  }
  for (const { index, earlier } of repeats) {
    // The same id twice: claimed once; the later copy runs as `run` would once the first settled.
    const again = () => deps.run(inputs[index] as RunInput, (ctx: RunContext) => fn(ctx, index))
    results[index] = (results[earlier] as Promise<RunResult<T>>).then(again, again)
  }
  return results
}

/** One input's claim outcome, as `run` handles it. Runs inside a `then` callback, so a throw rejects that input's promise. */
function settle<T>(
  deps: CoreDeps,
  input: RunInput,
  p: Prepared,
  begun: BeginResult,
  fn: (ctx: RunContext) => Promise<T> | T,
  complete: Complete,
): Promise<RunResult<T>> | RunResult<T> {
  const { base, policy } = p
  switch (begun.outcome) {
    case 'acquired':
      if (begun.recovered) deps.events.emit('takeover', { ...base, attempt: begun.attempt })
      return deps.execute(p, begun, fn, complete)
    case 'completed':
      deps.cache?.set(base.id, p.fingerprint, begun.result, policy.ttlMs, Date.now())
      if (deps.events.has('replayed')) deps.events.emit('replayed', { ...base, cached: false })
      return replay<T>(begun.result)
    case 'mismatch':
      throw deps.mismatch(base)
    case 'in_progress':
      // Waiting means polling, which `run` does.
      if (policy.onInProgress === 'wait' && policy.waitTimeoutMs > 0) return deps.run(input, fn)
      deps.events.emit('in_progress', { ...base, retryAfterMs: begun.retryAfterMs, waiting: false })
      throw new InProgressError(`"${base.key}" is being executed by another worker`, begun.retryAfterMs, {
        recordId: base.id,
      })
  }
}

/**
 * Gathers the completions of one batch into completeMany calls: those requested while a call is
 * being prepared or is in flight go together in the next. Whatever does not complete that way
 * (a lone item, a lost lease, a store error) goes through `completeOutcome`, exactly as in `run`.
 */
interface Pending {
  p: Prepared
  token: string
  stored: string
  value: unknown
  resolve(): void
  reject(error: unknown): void
}

class CompletionBatch {
  readonly #deps: CoreDeps
  #queue: Pending[] = []
  #busy = false

  constructor(deps: CoreDeps) {
    this.#deps = deps
  }

  readonly complete: Complete = (p, token, stored, value) =>
    new Promise<void>((resolve, reject) => {
      this.#queue.push({ p, token, stored, value, resolve, reject })
      if (!this.#busy) {
        this.#busy = true
        // Let the handlers that finish in the same turn join this call.
        setImmediate(() => void this.#flush())
      }
    })

  async #flush(): Promise<void> {
    const queued = this.#queue
    this.#queue = []
    try {
      const ttlMs = (queued[0] as Pending).p.policy.ttlMs
      if (queued.every((item) => item.p.policy.ttlMs === ttlMs)) {
        await this.#completeMany(ttlMs, queued)
      } else {
        // completeMany takes one ttl: items that differ in it are completed in separate calls.
        const byTtl = new Map<number, Pending[]>()
        for (const item of queued) {
          const list = byTtl.get(item.p.policy.ttlMs)
          if (list === undefined) byTtl.set(item.p.policy.ttlMs, [item])
          else list.push(item)
        }
        await Promise.all([...byTtl].map(([ttl, items]) => this.#completeMany(ttl, items)))
      }
    } finally {
      if (this.#queue.length > 0) setImmediate(() => void this.#flush())
      else this.#busy = false
    }
  }

  async #completeMany(ttlMs: number, items: Pending[]): Promise<void> {
    let outcomes: string[] | undefined
    if (items.length > 1) {
      const batch: CompleteItem[] = []
      for (const { p, token, stored } of items) batch.push({ id: p.base.id, token, result: stored })
      outcomes = await this.#deps.store.completeMany(batch, ttlMs).catch(() => undefined)
    }
    let rest: Promise<void>[] | undefined
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Pending
      if (outcomes?.[i] === 'completed') {
        this.#deps.cache?.set(item.p.base.id, item.p.fingerprint, item.stored, ttlMs, Date.now())
        item.resolve()
        continue
      }
      rest ??= []
      rest.push(
        completeOutcome(this.#deps, item.p, item.token, item.stored, item.value).then(item.resolve, (error: unknown) =>
          item.reject(error ?? new Error('completion failed')),
        ),
      )
    }
    if (rest !== undefined) await Promise.all(rest)
  }
}

/** Store the outcome, retrying a failing store a few times; the function's `value` rides on any error. */
export async function completeOutcome(
  deps: CoreDeps,
  p: Prepared,
  token: string,
  stored: string,
  value: unknown,
): Promise<void> {
  const { base, policy } = p
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.store.complete(base.id, token, stored, policy.ttlMs)
      deps.cache?.set(base.id, p.fingerprint, stored, policy.ttlMs, Date.now())
      return
    } catch (error) {
      if (error instanceof LeaseLostError) {
        deps.events.emit('lease_lost', { ...base, during: 'complete' })
        const lost = new LeaseLostError(
          `"${base.key}" ran, but its claim was taken over before the outcome could be stored; a duplicate may run it again`,
          { recordId: base.id, cause: error },
        )
        lost.value = value
        throw lost
      }
      if (error instanceof IdempotencyError && !(error instanceof StoreUnavailableError)) {
        throw Object.assign(error, { value })
      }
      const lastAttempt = attempt >= COMPLETE_ATTEMPTS
      deps.events.emit('store_error', {
        ...base,
        operation: 'complete',
        error,
        failOpen: lastAttempt && policy.failOpen,
      })
      if (lastAttempt) {
        if (policy.failOpen) {
          deps.countFailOpen()
          return
        }
        const down = new StoreUnavailableError(
          `"${base.key}" ran, but its outcome could not be stored: ${(error as Error)?.message ?? error}`,
          { recordId: base.id, cause: error },
        )
        down.value = value
        throw down
      }
      await sleep(20 * 4 ** (attempt - 1))
    }
  }
}

export function replay<T>(stored: string): RunResult<T> {
  const decoded = decode(stored)
  if (!decoded.ok) throw decoded.error
  return { status: 'replayed', value: decoded.value as T }
}

/**
 * An error that says something about the call, not about the store's health: Idem's own (other
 * than STORE_UNAVAILABLE) and the TypeError/RangeError with which stores reject bad arguments.
 * Such an error is thrown as it is, never turned into STORE_UNAVAILABLE or a fail-open execution.
 */
export function isCallerError(error: unknown): boolean {
  if (error instanceof IdempotencyError) return !(error instanceof StoreUnavailableError)
  return error instanceof TypeError || error instanceof RangeError
}
