// Running the function under a lease (what `run` and `runMany` do once they hold a key): renew
// the lease while it runs, then store its outcome (with retries) or release the claim for a
// retry. Also the fail-open path, when the store cannot be reached at all.

import { setTimeout as sleep } from 'node:timers/promises'
import { IdempotencyError, LeaseLostError, ResultTooLargeError, StoreUnavailableError } from '../errors.js'
import { encodeError, encodeValue } from './codec.js'
import { derivedKey } from './derived-key.js'
import { LeaseKeeper } from './lease-keeper.js'
import type { Acquired, Pipeline, Prepared } from './pipeline.js'
import { tell } from './probe.js'
import { ExecutionContext, type RunContext, type RunResult, unprotectedContext } from './run-context.js'

/**
 * Stores an outcome for the claim `token`; throws as `completeOutcome` does. `ranUntil` is when the
 * function ended (`performance.now()`), read once for both its duration and the completion's
 * timing; 0 when nobody measures. `leaseDeadline` (`Date.now()` time) is until when the claim may
 * still be held: a failing store is retried until then. Resolves true when the outcome was not
 * stored and the policy failed open (the caller gets its value, unprotected from a duplicate).
 */
export type Complete = (
  core: Pipeline,
  p: Prepared,
  token: string,
  stored: string,
  value: unknown,
  ranUntil: number,
  leaseDeadline: number,
) => Promise<boolean>

/**
 * Attempts at storing an outcome on a failing store, at least; more while the lease may still be
 * held. Giving up earlier gains nothing: nobody else may run the key until the lease lapses, and
 * then a duplicate runs the function again, which one more attempt that succeeds prevents. Except
 * with `failOpen`, which chose answering over waiting on a store that is down: its caller gets the
 * value after these few attempts (they cover a blip), not when the lease lapses.
 */
const COMPLETE_ATTEMPTS = 3
/** Pause before the attempt after `attempt`: 20, 80, 320 ms, then every second. */
const completeRetryDelay = (attempt: number): number => Math.min(20 * 4 ** (attempt - 1), 1000)

/** Runs `fn` on an acquired claim and stores its outcome through `complete` (a batch's gathers them). */
export async function execute<T>(
  core: Pipeline,
  p: Prepared,
  { token, attempt, recovered }: Acquired,
  fn: (ctx: RunContext) => Promise<T> | T,
  complete: Complete = completeOutcome,
  kind: 'run' | 'runMany' = 'run',
  claimedAt?: number,
): Promise<RunResult<T>> {
  const { base, policy } = p
  const { id } = base
  if (recovered) core.events.emit('takeover', { scope: base.scope, key: base.key, id: base.id, attempt })
  const keeper = new LeaseKeeper(core.store, id, token, policy.leaseMs, core.keeperHooks, base)
  const startedAt = claimedAt ?? performance.now()
  const ctx: RunContext = new ExecutionContext(base, attempt, recovered, keeper, (name) => derivedKey(id, name))
  const probe = core.activeProbe()
  // When the function ended, read only when someone measures (a probe, an `executed` listener).
  const measured = probe !== undefined || core.events.has('executed')
  let value: T
  try {
    value =
      probe?.aroundExecution === undefined
        ? await fn(ctx)
        : await probe.aroundExecution(
            { kind, scope: base.scope, key: base.key, id: base.id, attempt, recovered },
            async () => fn(ctx),
          )
  } catch (error) {
    const ranUntil = measured ? performance.now() : 0
    keeper.stop()
    if (core.isFinal(policy, error)) {
      const stored = encodeError(error, core.maxResultBytes, id, core.cipher, p.fingerprint)
      await complete(core, p, token, stored, error, ranUntil, keeper.deadline)
      core.executed(base, attempt, (ranUntil || performance.now()) - startedAt, true)
      throw error
    }
    await core.store.release(id, token).then(
      () => core.events.emit('released', { scope: base.scope, key: base.key, id: base.id, error }),
      (releaseError: unknown) => {
        // The claim lapses on its own; a retry takes over after the lease.
        if (releaseError instanceof LeaseLostError) {
          core.events.emit('lease_lost', { scope: base.scope, key: base.key, id: base.id, during: 'complete' })
        } else {
          core.events.emit('store_error', {
            scope: base.scope,
            key: base.key,
            id: base.id,
            operation: 'release',
            error: releaseError,
            failOpen: false,
          })
        }
      },
    )
    throw error
  }
  const ranUntil = measured ? performance.now() : 0
  keeper.stop()
  let stored: string
  try {
    stored = encodeValue(value, core.maxResultBytes, id, core.cipher, p.fingerprint)
  } catch (error) {
    // The function ran: store the failure as final so that a duplicate does not run it again,
    // and hand the caller its value on the error (attached after encoding, never stored).
    const storedError = encodeError(error, core.maxResultBytes, id, core.cipher, p.fingerprint)
    ;(error as { value?: unknown }).value = value
    await complete(core, p, token, storedError, value, ranUntil, keeper.deadline)
    throw error
  }
  const failedOpen = await complete(core, p, token, stored, value, ranUntil, keeper.deadline)
  // Not stored (failOpen): the last store_error said so (failOpen: true), and `executed` means
  // stored, as for a call that failed open at its claim.
  if (failedOpen) return { status: 'executed', value, failedOpen }
  // A listener added while the function ran finds ranUntil unread (0).
  core.executed(base, attempt, (ranUntil || performance.now()) - startedAt, false)
  return { status: 'executed', value }
}

/**
 * Store the outcome, retrying a failing store at least three times and, unless the policy fails
 * open, for as long as the lease may still be held (`leaseDeadline`); the function's `value` rides
 * on any error. True when it was not stored and the policy failed open.
 */
export async function completeOutcome(
  core: Pipeline,
  p: Prepared,
  token: string,
  stored: string,
  value: unknown,
  ranUntil = 0,
  leaseDeadline = 0,
): Promise<boolean> {
  try {
    return await storeOutcome(core, p, token, stored, value, ranUntil, leaseDeadline)
  } catch (error) {
    if (!(error instanceof ResultTooLargeError)) throw error
    // The store's own limit is below this Idempotency's maxResultBytes. The function ran: complete
    // the key with this error, as for a result over maxResultBytes, rather than leave it claimed
    // until its lease lapses and a duplicate runs the function again.
    core.events.emit('store_error', {
      scope: p.base.scope,
      key: p.base.key,
      id: p.base.id,
      operation: 'complete',
      error,
      failOpen: false,
    })
    // A fresh error: the one thrown carries the function's value, which must not be stored.
    const outcome = new ResultTooLargeError(error.bytes, error.limit, { recordId: p.base.id })
    await storeOutcome(
      core,
      p,
      token,
      encodeError(outcome, core.maxResultBytes, p.base.id, core.cipher, p.fingerprint),
      value,
      0,
      leaseDeadline,
    )
    throw error
  }
}

async function storeOutcome(
  core: Pipeline,
  p: Prepared,
  token: string,
  stored: string,
  value: unknown,
  ranUntil: number,
  leaseDeadline: number,
): Promise<boolean> {
  const { base, policy } = p
  for (let attempt = 1; ; attempt++) {
    // Timed here rather than through the ObservedStore, as run()'s claim is; the first attempt
    // starts when the function ended (read once for both).
    const probe = core.activeProbe()
    const startedAt = probe === undefined ? 0 : attempt === 1 && ranUntil > 0 ? ranUntil : performance.now()
    try {
      await core.givenStore.complete(base.id, token, stored, policy.ttlMs)
      if (probe !== undefined) tell(probe, 'complete', startedAt, performance.now(), undefined)
      core.stored(p, stored)
      return false
    } catch (error) {
      if (probe !== undefined) tell(probe, 'complete', startedAt, performance.now(), error)
      if (error instanceof LeaseLostError) {
        core.events.emit('lease_lost', { scope: base.scope, key: base.key, id: base.id, during: 'complete' })
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
      const delay = completeRetryDelay(attempt)
      const lastAttempt = attempt >= COMPLETE_ATTEMPTS && (policy.failOpen || Date.now() + delay >= leaseDeadline)
      core.events.emit('store_error', {
        scope: base.scope,
        key: base.key,
        id: base.id,
        operation: 'complete',
        error,
        failOpen: lastAttempt && policy.failOpen,
      })
      if (lastAttempt) {
        if (policy.failOpen) {
          core.failOpenExecutions++
          return true
        }
        const down = new StoreUnavailableError(
          `"${base.key}" ran, but its outcome could not be stored: ${(error as Error)?.message ?? error}`,
          { recordId: base.id, cause: error },
        )
        down.value = value
        throw down
      }
      await sleep(delay)
    }
  }
}

/** The store failed before the key was claimed: STORE_UNAVAILABLE, or with `failOpen` the function runs unprotected. */
export async function storeDown<T>(
  core: Pipeline,
  { base, policy }: Prepared,
  operation: string,
  error: unknown,
  fn: (ctx: RunContext) => Promise<T> | T,
): Promise<RunResult<T>> {
  core.events.emit('store_error', {
    scope: base.scope,
    key: base.key,
    id: base.id,
    operation,
    error,
    failOpen: policy.failOpen,
  })
  if (!policy.failOpen) {
    throw new StoreUnavailableError(
      `Idempotency store failed during ${operation}: ${(error as Error)?.message ?? error}`,
      {
        recordId: base.id,
        cause: error,
      },
    )
  }
  core.failOpenExecutions++
  const ctx = unprotectedContext(base, (name) => derivedKey(base.id, name))
  const probe = core.activeProbe()
  const value =
    probe?.aroundExecution === undefined
      ? await fn(ctx)
      : await probe.aroundExecution(
          { kind: 'run', scope: base.scope, key: base.key, id: base.id, attempt: 1, recovered: false },
          async () => fn(ctx),
        )
  return { status: 'executed', value, failedOpen: true }
}
