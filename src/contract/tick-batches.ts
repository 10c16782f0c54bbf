// The begins and completions of one tick, sent to the store as one batch. Concurrent run()s begin
// and complete in the same tick (their replies arrive in one socket read and resume together), so
// a store whose batch costs about one call (one SQL statement, one Lua script) does N calls' work
// for the price of one. Only while the store is busy (calls of its own in flight) do calls wait
// for the end of their tick (process.nextTick, no timer); a call made while it is idle goes at
// once, as it would without batching: at concurrency 1 there is nothing to merge with, and
// deferring cost latency.

import { StoreUnavailableError } from '../errors.js'
import { leaseLost } from './transitions.js'
import type { BeginItem, BeginResult, CompleteItem, CompleteManyOutcome } from './types.js'

/** The store's primitives a batch runs on (BaseStore's `do*` methods). */
export interface BatchPrimitives {
  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult>
  beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]>
  complete(id: string, token: string, result: string, ttlMs: number): Promise<void>
  completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]>
}

/** Which operations a store merges per tick. */
export interface TickBatching {
  begins: boolean
  completes: boolean
}

interface Waiting<T> {
  resolve: (value: T) => void
  reject: (error: unknown) => void
}
type WaitingBegin = BeginItem & Waiting<BeginResult>
type WaitingComplete = CompleteItem & Waiting<void>

/** Begins that can share a batch: the same lease and retention. */
interface BeginGroup {
  leaseMs: number
  ttlMs: number
  items: WaitingBegin[]
}

export class TickBatches {
  readonly #store: BatchPrimitives
  /** Begins waiting for the end of this tick, by `${leaseMs}/${ttlMs}`. */
  #begins = new Map<string, BeginGroup>()
  /** Completions waiting for the end of this tick, by ttlMs. */
  #completes = new Map<number, WaitingComplete[]>()
  #scheduled = false
  /** Primitive calls sent and not yet settled: while there are any, calls wait to be merged. */
  #inFlight = 0
  readonly #settled = (): void => {
    this.#inFlight--
  }

  constructor(store: BatchPrimitives) {
    this.#store = store
  }

  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    if (this.#inFlight === 0) return this.#track(call(() => this.#store.begin(id, fingerprint, leaseMs, ttlMs)))
    return new Promise((resolve, reject) => {
      const name = `${leaseMs}/${ttlMs}`
      const item: WaitingBegin = { id, fingerprint, resolve, reject }
      const group = this.#begins.get(name)
      if (group === undefined) this.#begins.set(name, { leaseMs, ttlMs, items: [item] })
      else group.items.push(item)
      this.#schedule()
    })
  }

  complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    if (this.#inFlight === 0) return this.#track(call(() => this.#store.complete(id, token, result, ttlMs)))
    return new Promise((resolve, reject) => {
      const item: WaitingComplete = { id, token, result, resolve, reject }
      const waiting = this.#completes.get(ttlMs)
      if (waiting === undefined) this.#completes.set(ttlMs, [item])
      else waiting.push(item)
      this.#schedule()
    })
  }

  /** Counts `sent` in flight until it settles, and returns it. */
  #track<T>(sent: Promise<T>): Promise<T> {
    this.#inFlight++
    sent.then(this.#settled, this.#settled)
    return sent
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    process.nextTick(flushBatches, this)
  }

  /** Sends what waits now (a closing store calls it so that nothing is left behind). */
  flush(): void {
    this.#scheduled = false
    if (this.#begins.size > 0) {
      const groups = this.#begins
      this.#begins = new Map()
      for (const group of groups.values()) this.#sendBegins(group)
    }
    if (this.#completes.size > 0) {
      const groups = this.#completes
      this.#completes = new Map()
      for (const [ttlMs, items] of groups) this.#sendCompletes(items, ttlMs)
    }
  }

  #sendBegins({ leaseMs, ttlMs, items }: BeginGroup): void {
    const first = items[0] as WaitingBegin
    if (items.length === 1) {
      this.#track(call(() => this.#store.begin(first.id, first.fingerprint, leaseMs, ttlMs))).then(
        first.resolve,
        first.reject,
      )
      return
    }
    this.#track(call(() => this.#store.beginMany(items, leaseMs, ttlMs))).then(
      (results) => {
        items.forEach((item, i) => {
          item.resolve(results[i] as BeginResult)
        })
      },
      (error: unknown) => {
        for (const item of items) item.reject(error)
      },
    )
  }

  #sendCompletes(items: WaitingComplete[], ttlMs: number): void {
    const first = items[0] as WaitingComplete
    if (items.length === 1) {
      this.#track(call(() => this.#store.complete(first.id, first.token, first.result, ttlMs))).then(
        first.resolve,
        first.reject,
      )
      return
    }
    this.#track(call(() => this.#store.completeMany(items, ttlMs))).then(
      (outcomes) => {
        items.forEach((item, i) => {
          const outcome = outcomes[i]
          if (outcome === 'completed') item.resolve()
          else if (outcome === 'lease_lost') item.reject(leaseLost(item.id, 'complete'))
          // Results were checked against the limit before they waited here: the store disagrees.
          else item.reject(new StoreUnavailableError(`The store answered ${outcome} completing "${item.id}"`))
        })
      },
      (error: unknown) => {
        for (const item of items) item.reject(error)
      },
    )
  }
}

function flushBatches(batches: TickBatches): void {
  batches.flush()
}

/** A primitive's promise, with a synchronous throw turned into a rejection. */
function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn()
  } catch (error) {
    return Promise.reject(error)
  }
}
