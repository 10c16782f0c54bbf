// One sample of the soak run every few seconds: memory after a forced full GC, event-loop delay,
// open handles by type, each store's size and the size its ttl allows, and the traffic counters.

import { monitorEventLoopDelay } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { CreationRate, Errors, Ledger } from './ledger.js'
import type { SoakStore, StoreName } from './stores.js'

export interface Sample {
  /** Seconds since traffic started. */
  t: number
  heapUsed: number
  rss: number
  /** p99 event-loop delay since the previous sample, ms (the forced GC itself excluded). */
  eldP99Ms: number
  handles: Record<string, number>
  handlesTotal: number
  storeSize: Partial<Record<StoreName, number>>
  /** Records the store may hold at this instant: those created within ttl + its expiry lag + slack. */
  storeBound: Partial<Record<StoreName, number>>
  /** Operations answered or settled so far, all sources. */
  done: number
  opsPerS: number
  replayed: number
  errors: number
  shed: number
  /** How long taking this sample took, ms (GC and the store counts included). */
  sampleMs: number
}

/**
 * `global.gc`, present under `node --expose-gc` (what `npm run soak` runs); otherwise the flag is
 * set now and the function taken from a new context, which has it once the flag is on.
 */
export function forcedGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

export interface SamplerOptions {
  stores: readonly SoakStore[]
  rates: ReadonlyMap<StoreName, CreationRate>
  ledgers: readonly Ledger[]
  errors: Errors
  ttlS: number
  startedAt: number
}

/**
 * Records expire ttl after they complete, a few ms after the handler ran (when they are counted):
 * two seconds cover that, and the bound's whole-second buckets round up.
 */
const BOUND_SLACK_S = 2
/**
 * Records claimed whose handler has not run yet, so not counted: a request on each of an undici
 * pool's 16 connections, and a consumer's batch (at most 64 entries) waiting for its 16 slots.
 */
const BOUND_SLACK_RECORDS = 16 + 64 + 16

export class Sampler {
  readonly #gc = forcedGc()
  readonly #delay = monitorEventLoopDelay({ resolution: 10 })
  #lastT = 0
  #lastDone = 0

  constructor(readonly options: SamplerOptions) {
    this.#delay.enable()
  }

  async take(): Promise<Sample> {
    const takenAt = performance.now()
    const t = (takenAt - this.options.startedAt) / 1000
    const eldP99Ms = this.#delay.percentile(99) / 1e6
    this.#gc()
    const memory = process.memoryUsage()
    // Reset after the GC, so that its pause is not counted as the next window's loop delay.
    this.#delay.reset()
    const handles: Record<string, number> = {}
    for (const type of process.getActiveResourcesInfo()) handles[type] = (handles[type] ?? 0) + 1
    const storeSize: Sample['storeSize'] = {}
    const storeBound: Sample['storeBound'] = {}
    for (const store of this.options.stores) {
      storeSize[store.name] = await store.size()
      // Counted after the size was read, so the bound includes every record the size could have seen.
      const rate = this.options.rates.get(store.name) as CreationRate
      storeBound[store.name] = rate.within(this.options.ttlS + store.expiryLagS + BOUND_SLACK_S) + BOUND_SLACK_RECORDS
    }
    const ledgers = this.options.ledgers
    const done = ledgers.reduce((sum, l) => sum + l.done, 0)
    const opsPerS = (done - this.#lastDone) / (t - this.#lastT)
    this.#lastT = t
    this.#lastDone = done
    return {
      t,
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      eldP99Ms,
      handles,
      handlesTotal: Object.values(handles).reduce((a, b) => a + b, 0),
      storeSize,
      storeBound,
      done,
      opsPerS,
      replayed: ledgers.reduce((sum, l) => sum + l.replayed, 0),
      errors: this.options.errors.count,
      shed: ledgers.reduce((sum, l) => sum + l.shed, 0),
      sampleMs: performance.now() - takenAt,
    }
  }

  stop(): void {
    this.#delay.disable()
  }
}
