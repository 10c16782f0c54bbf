// What an instrumentation (idem/metrics, idem/tracing, or your own) attaches to an `Idempotency`
// with `idem.instrument(probe)`: the timing of every store call, and hooks around each run and
// each execution of the function. Dependency-free: the libraries that give these a meaning
// (prom-client, the OpenTelemetry API) are imported by the instrumentations, never by the core.
// Events (`idem.on`) say what happened; a probe says how long it took and where it ran.

import type { CallOrigin } from './options.js'

/** The store calls a probe is told about, named as the store contract's methods. */
export type StoreOperation =
  | 'begin'
  | 'complete'
  | 'release'
  | 'extend'
  | 'beginMany'
  | 'completeMany'
  | 'get'
  | 'delete'
  | 'sweep'

/** One `run`, `runMany` member or `transaction` call, once its input is validated. */
export interface RunInfo {
  kind: 'run' | 'runMany' | 'transaction'
  scope: string
  key: string
  /** The record id derived from (scope, key). */
  id: string
  /** The message or request the call comes from, when the caller said (`RunInput.origin`). */
  origin?: CallOrigin
}

/** One execution of the function under a claim (or unprotected, after a store failure with `failOpen`). */
export interface ExecutionInfo extends RunInfo {
  attempt: number
  /** True when this execution took over a lapsed lease. */
  recovered: boolean
}

export interface Probe {
  /**
   * False while the probe has nothing to do (a tracer with no SDK behind it): the core then skips
   * every hook of this call, clock reads included. Asked once per step, so keep it cheap. Absent:
   * always enabled.
   */
  enabled?(): boolean
  /**
   * A store call ended after `durationMs`; `startedAt` is its `performance.now()` at the start;
   * `error` is what it threw (undefined when it succeeded: a lease found lost is an answer of the
   * store, thrown as `LeaseLostError`, and is passed here too). Called synchronously on the hot
   * path: keep it to a few arithmetic operations.
   */
  storeCall?(operation: StoreOperation, startedAt: number, durationMs: number, error: unknown): void
  /**
   * Wraps one call: `body` claims the key and executes, replays or throws; what it resolves to or
   * rejects with is the call's own. A tracer opens its span here and makes it the active context.
   */
  aroundRun?<R>(info: RunInfo, body: () => Promise<R>): Promise<R>
  /** Wraps one execution of the function (`call` runs it): a tracer's child span of the run. */
  aroundExecution?<R>(info: ExecutionInfo, call: () => Promise<R>): Promise<R>
}

/** The probes attached to one `Idempotency`, as one; a probe not enabled at the moment of a hook is skipped by it. */
export function combineProbes(probes: readonly Probe[]): Probe | undefined {
  if (probes.length === 0) return undefined
  if (probes.length === 1) return probes[0]
  const timers = probes.filter((probe) => probe.storeCall !== undefined)
  const runs = probes.filter((probe) => probe.aroundRun !== undefined)
  const executions = probes.filter((probe) => probe.aroundExecution !== undefined)
  const combined: Probe = {}
  // Enabled while any is; a probe without `enabled` always is.
  if (probes.every((probe) => probe.enabled !== undefined)) {
    combined.enabled = () => probes.some((probe) => probe.enabled?.() === true)
  }
  if (timers.length > 0) {
    combined.storeCall = (operation, startedAt, durationMs, error) => {
      for (const probe of timers) {
        if (probe.enabled?.() !== false) probe.storeCall?.(operation, startedAt, durationMs, error)
      }
    }
  }
  if (runs.length > 0) {
    combined.aroundRun = <R>(info: RunInfo, body: () => Promise<R>): Promise<R> => {
      let wrapped = body
      for (let i = runs.length - 1; i >= 0; i--) {
        const probe = runs[i] as Probe
        if (probe.enabled?.() === false) continue
        const inner = wrapped
        wrapped = () => (probe.aroundRun as NonNullable<Probe['aroundRun']>)(info, inner)
      }
      return wrapped()
    }
  }
  if (executions.length > 0) {
    combined.aroundExecution = <R>(info: ExecutionInfo, call: () => Promise<R>): Promise<R> => {
      let wrapped = call
      for (let i = executions.length - 1; i >= 0; i--) {
        const probe = executions[i] as Probe
        if (probe.enabled?.() === false) continue
        const inner = wrapped
        wrapped = () => (probe.aroundExecution as NonNullable<Probe['aroundExecution']>)(info, inner)
      }
      return wrapped()
    }
  }
  return combined
}

/** Tells `probe` that a store call ended; a probe that throws never changes the call's outcome. */
export function tell(
  probe: Probe,
  operation: StoreOperation,
  startedAt: number,
  endedAt: number,
  error: unknown,
): void {
  try {
    probe.storeCall?.(operation, startedAt, endedAt - startedAt, error)
  } catch {}
}

/** Runs `call` (a store call) and tells `probe` how long it took. */
export async function timed<R>(
  probe: Probe | undefined,
  operation: StoreOperation,
  call: () => Promise<R>,
): Promise<R> {
  if (probe?.storeCall === undefined) return call()
  const startedAt = performance.now()
  try {
    const value = await call()
    tell(probe, operation, startedAt, performance.now(), undefined)
    return value
  } catch (error) {
    tell(probe, operation, startedAt, performance.now(), error)
    throw error
  }
}
