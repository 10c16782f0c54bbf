// `runMany`: `run` for a batch of keys. The claims are made in one store round trip (beginMany)
// and the completions gathered into few (completeMany, completion-batch.ts); each key then
// settles on its own, exactly as `run` would.

import { PartialBatchError } from '../contract/partial-batch.js'
import type { BeginResult } from '../contract/types.js'
import { CompletionBatch } from './completion-batch.js'
import { type Complete, execute, storeDown } from './execute.js'
import type { RunInput } from './options.js'
import { isCallerError, type Pipeline, type Prepared } from './pipeline.js'
import { run } from './run.js'
import type { RunContext, RunResult } from './run-context.js'

interface Claim {
  index: number
  p: Prepared
}

export function runMany<T>(
  core: Pipeline,
  inputs: readonly RunInput[],
  fn: (ctx: RunContext, index: number) => Promise<T> | T,
): Promise<RunResult<T>>[] {
  const results: Promise<RunResult<T>>[] = []
  const claims = new Map<string, Claim[]>()
  const firstOfId = new Map<string, number>()
  const repeats: { index: number; earlier: number }[] = []
  /** The group of the previous input: consecutive inputs almost always share one. */
  let last: { leaseMs: number; ttlMs: number; list: Claim[] } | undefined
  inputs.forEach((input, index) => {
    let p: Prepared
    try {
      p = core.prepare(input)
      const cached = core.cached<T>(p)
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
  const complete = new CompletionBatch(core).complete
  for (const list of claims.values()) {
    const { leaseMs, ttlMs } = (list[0] as Claim).p.policy
    const items = list.map(({ p }) => ({ id: p.base.id, fingerprint: p.fingerprint }))
    let begun: Promise<BeginResult[]>
    try {
      begun = core.store.beginMany(items, leaseMs, ttlMs)
    } catch (error) {
      begun = Promise.reject(error)
    }
    list.forEach(({ index, p }, position) => {
      const one = (ctx: RunContext) => fn(ctx, index)
      const settleThis = (begun: BeginResult) => {
        const probe = core.activeProbe()
        if (probe?.aroundRun === undefined) return settle(core, inputs[index] as RunInput, p, begun, one, complete)
        return probe.aroundRun(
          {
            kind: 'runMany',
            scope: p.base.scope,
            key: p.base.key,
            id: p.base.id,
            origin: (inputs[index] as RunInput).origin,
          },
          async () => settle(core, inputs[index] as RunInput, p, begun, one, complete),
        )
      }
      results[index] = begun.then(
        (outcomes) => settleThis(outcomes[position] as BeginResult),
        (error: unknown) => {
          if (isCallerError(error)) throw error
          // Answered in part (a ShardedStore with a shard down): this item goes on as its
          // answer says, and only the items of the part that failed are down.
          if (error instanceof PartialBatchError) {
            const item = (error as PartialBatchError<BeginResult>).itemAt(position)
            return item.ok ? settleThis(item.result) : storeDown(core, p, 'beginMany', item.error, one)
          }
          return storeDown(core, p, 'beginMany', error, one)
        },
      )
    })
  }
  for (const { index, earlier } of repeats) {
    // The same id twice: claimed once; the later copy runs as `run` would once the first settled.
    const again = () => run(core, inputs[index] as RunInput, (ctx: RunContext) => fn(ctx, index))
    results[index] = (results[earlier] as Promise<RunResult<T>>).then(again, again)
  }
  return results
}

/** One input's claim outcome, as `run` handles it. Runs inside a `then` callback, so a throw rejects that input's promise. */
function settle<T>(
  core: Pipeline,
  input: RunInput,
  p: Prepared,
  begun: BeginResult,
  fn: (ctx: RunContext) => Promise<T> | T,
  complete: Complete,
): Promise<RunResult<T>> | RunResult<T> {
  if (begun.outcome === 'acquired') return execute(core, p, begun, fn, complete, 'runMany')
  // Waiting means polling, which `run` does.
  if (begun.outcome === 'in_progress' && core.waits(p.policy, Date.now() + p.policy.waitTimeoutMs)) {
    return run(core, input, fn)
  }
  return core.settle<T>(p, begun)
}
