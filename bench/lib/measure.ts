// Throughput measurement: a workload runs in samples of a fixed number of operations until a
// time budget is spent; only the operations are timed, never a sample's (untimed) preparation.

import { performance } from 'node:perf_hooks'

export interface Workload {
  /** Operations per sample; the table or map a sample writes to may be reset between samples. */
  sampleOps: number
  /** Untimed, before each sample (e.g. a fresh Map so that every sample inserts into the same size). */
  prepare?: () => void | Promise<void>
  /** One operation. Sync or async: the harness awaits it either way, so both pay the same await. */
  op: () => unknown
}

export interface MeasureOptions {
  /** Time budget in seconds; at least one sample always runs. */
  seconds: number
  /** 1: each operation awaited before the next starts. N: batches of N started together, then `Promise.all`. */
  concurrency: number
  /** Multiplies the workload's `sampleOps` (smaller samples for a quick run). Default 1. */
  sampleScale?: number
  /**
   * When given, receives every operation's latency in ms: from its start at concurrency 1, from
   * the start of its batch otherwise (the batch's operations are all started at that instant).
   * Off by default: reading the clock around each operation is not free.
   */
  latencies?: number[]
}

/** Operations per second of `workload`. */
export async function measure(workload: Workload, options: MeasureOptions): Promise<number> {
  const budgetMs = options.seconds * 1000
  const concurrency = Math.max(1, Math.floor(options.concurrency))
  // Whole batches only, so that every sample runs exactly `ops` operations.
  const sampleOps = workload.sampleOps * (options.sampleScale ?? 1)
  const ops = Math.max(concurrency, Math.round(sampleOps / concurrency) * concurrency)
  const { latencies } = options
  let done = 0
  let elapsedMs = 0
  do {
    await workload.prepare?.()
    const startedAt = performance.now()
    if (concurrency === 1) await sequential(workload.op, ops, latencies)
    else await batched(workload.op, ops, concurrency, latencies)
    elapsedMs += performance.now() - startedAt
    done += ops
  } while (elapsedMs < budgetMs)
  return done / (elapsedMs / 1000)
}

async function sequential(op: () => unknown, n: number, latencies: number[] | undefined): Promise<void> {
  if (latencies === undefined) {
    for (let i = 0; i < n; i++) await op()
    return
  }
  for (let i = 0; i < n; i++) {
    const startedAt = performance.now()
    await op()
    latencies.push(performance.now() - startedAt)
  }
}

async function batched(
  op: () => unknown,
  n: number,
  concurrency: number,
  latencies: number[] | undefined,
): Promise<void> {
  const batch: unknown[] = new Array(concurrency)
  const record = (startedAt: number) => () => {
    ;(latencies as number[]).push(performance.now() - startedAt)
  }
  for (let i = 0; i < n; i += concurrency) {
    if (latencies === undefined) {
      for (let j = 0; j < concurrency; j++) batch[j] = op()
    } else {
      const done = record(performance.now())
      for (let j = 0; j < concurrency; j++) batch[j] = Promise.resolve(op()).then(done)
    }
    await Promise.all(batch)
  }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** The `p`-th percentile (0-100) by nearest rank: the smallest value with at least p% of values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] as number
}
