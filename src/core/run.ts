// `run`: claim one key, then execute, replay, or wait for the worker that holds it.

import type { BeginResult } from '../contract/types.js'
import { completeOutcome, execute, storeDown } from './execute.js'
import type { RunInput } from './options.js'
import { FIRST_POLL_MS, isCallerError, type Pipeline, type Prepared } from './pipeline.js'
import { tell } from './probe.js'
import type { RunContext, RunResult } from './run-context.js'

export function run<T>(
  core: Pipeline,
  input: RunInput,
  fn: (ctx: RunContext) => Promise<T> | T,
): Promise<RunResult<T>> {
  // Not async: an async function that returns another's promise adds three microtask turns.
  let p: Prepared
  try {
    p = core.prepare(input)
  } catch (error) {
    return Promise.reject(error)
  }
  const probe = core.activeProbe()
  if (probe?.aroundRun === undefined) return claimAndRun(core, p, fn)
  return probe.aroundRun(
    { kind: 'run', scope: p.base.scope, key: p.base.key, id: p.base.id, origin: input.origin },
    () => claimAndRun(core, p, fn),
  )
}

async function claimAndRun<T>(
  core: Pipeline,
  p: Prepared,
  fn: (ctx: RunContext) => Promise<T> | T,
): Promise<RunResult<T>> {
  const cached = core.cached<T>(p)
  if (cached !== undefined) return cached

  const { base, policy, fingerprint } = p
  const waitUntil = Date.now() + policy.waitTimeoutMs
  let pollMs = FIRST_POLL_MS
  for (;;) {
    let begun: BeginResult
    // The claim is timed here rather than through the ObservedStore: one async layer less on the
    // hot path while a probe listens (see Pipeline.store).
    const probe = core.activeProbe()
    const startedAt = probe === undefined ? 0 : performance.now()
    try {
      begun = await core.givenStore.begin(base.id, fingerprint, policy.leaseMs, policy.ttlMs)
    } catch (error) {
      if (probe !== undefined) tell(probe, 'begin', startedAt, performance.now(), error)
      if (isCallerError(error)) throw error
      return storeDown(core, p, 'begin', error, fn)
    }
    if (probe === undefined) {
      if (begun.outcome === 'acquired') return execute(core, p, begun, fn)
    } else {
      // The end of the claim is the start of the execution: one clock read for both.
      const claimedAt = performance.now()
      tell(probe, 'begin', startedAt, claimedAt, undefined)
      if (begun.outcome === 'acquired') return execute(core, p, begun, fn, completeOutcome, 'run', claimedAt)
    }
    if (begun.outcome === 'in_progress' && core.waits(policy, waitUntil)) {
      pollMs = await core.pause(base, begun.retryAfterMs, waitUntil, pollMs)
      continue
    }
    return core.settle<T>(p, begun)
  }
}
