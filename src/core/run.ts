// `run`: claim one key, then execute, replay, or wait for the worker that holds it.

import type { BeginResult } from '../contract/types.js'
import { execute, storeDown } from './execute.js'
import type { RunInput } from './options.js'
import { FIRST_POLL_MS, isCallerError, type Pipeline, type Prepared } from './pipeline.js'
import { tell } from './probe.js'
import type { RunContext, RunResult } from './run-context.js'

export async function run<T>(
  core: Pipeline,
  input: RunInput,
  fn: (ctx: RunContext) => Promise<T> | T,
): Promise<RunResult<T>> {
  const p = core.prepare(input)
  const probe = core.probe
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
    const probe = core.probe
    const startedAt = probe === undefined ? 0 : performance.now()
    try {
      begun = await core.givenStore.begin(base.id, fingerprint, policy.leaseMs, policy.ttlMs)
      if (probe !== undefined) tell(probe, 'begin', startedAt, undefined)
    } catch (error) {
      if (probe !== undefined) tell(probe, 'begin', startedAt, error)
      if (isCallerError(error)) throw error
      return storeDown(core, p, 'begin', error, fn)
    }
    if (begun.outcome === 'acquired') return execute(core, p, begun, fn)
    if (begun.outcome === 'in_progress' && core.waits(policy, waitUntil)) {
      pollMs = await core.pause(base, begun.retryAfterMs, waitUntil, pollMs)
      continue
    }
    return core.settle<T>(p, begun)
  }
}
