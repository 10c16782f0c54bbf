// One accepted delivery inside the consumer, from `handle` until the broker was told how it ended:
// its lane job, its result, its turn in a batch, and the `extend()` calls that keep the broker
// from redelivering it meanwhile. One object per delivery, and no closure or promise unless someone
// waits for this delivery alone (`handle`, or `close()`), because the consumer makes one per message.

import type { Emitter } from '../core/emitter.js'
import { Repeating } from '../core/repeating.js'
import type { Decision } from './decide.js'
import type { ConsumerEvents, Delivery, DeliveryResult } from './types.js'

/** setInterval's longest delay; it runs a longer one every 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Where a batch member stands: waiting for its turn in the lanes, running, or handed back unstarted. */
const WAITING = 0
const OPEN = 1
const CANCELLED = 2

/** The results of one `handleBatch`, in delivery order: one promise for the batch rather than one per member. */
export class BatchResults {
  readonly results: DeliveryResult[]
  readonly promise: Promise<DeliveryResult[]>
  #resolve!: (results: DeliveryResult[]) => void
  #left: number

  constructor(size: number) {
    this.results = new Array<DeliveryResult>(size)
    this.#left = size
    this.promise = new Promise((resolve) => {
      this.#resolve = resolve
    })
  }

  set(index: number, result: DeliveryResult): void {
    this.results[index] = result
    if (--this.#left === 0) this.#resolve(this.results)
  }
}

export class Task<P> extends Repeating {
  readonly delivery: Delivery<P>
  readonly lane: string
  readonly receivedAt: number
  /** The batch this task belongs to, and its place there; its result is written there too. */
  batch: BatchResults | undefined = undefined
  index = 0
  /** Set once the broker is being told; a later decision (a handler that ends after shutdown) is dropped. */
  settled = false
  /** Its job started in the lanes (so the lanes must be told when it ends). */
  running = false
  /** The handler was called / returned: the retry policy's `Progress`. */
  started = false
  returned = false
  /** A batch member: claimed by `runBatch`, whose decision arrives here. */
  readonly batched: boolean
  /** A batch member's decision when it came before its turn in the lanes: settled once the turn comes. */
  decision: Decision | undefined = undefined
  readonly #events: Emitter<ConsumerEvents>
  #result: DeliveryResult | undefined = undefined
  #done: Promise<DeliveryResult> | undefined = undefined
  #resolve: ((result: DeliveryResult) => void) | undefined = undefined
  #turn = WAITING
  #cancelledWith: unknown = undefined
  /** Made only when the handler is ready before the job's turn came (or was cancelled). */
  #gate: { promise: Promise<void>; resolve(): void; reject(error: unknown): void } | undefined = undefined
  #extending = false

  constructor(delivery: Delivery<P>, lane: string, batched: boolean, events: Emitter<ConsumerEvents>) {
    super()
    this.delivery = delivery
    this.lane = lane
    this.batched = batched
    this.receivedAt = performance.now()
    this.#events = events
    const every = delivery.extendEveryMs
    if (typeof delivery.extend === 'function' && every !== undefined && every > 0) {
      // What setInterval would make of the number: below 1 ms or past its maximum, 1 ms.
      this.startRepeating(every >= 1 && every <= MAX_TIMER_MS ? every : 1)
    }
  }

  /** Resolves with the result once the broker was told; made on first use (a batch member's usually never is). */
  get done(): Promise<DeliveryResult> {
    if (this.#done === undefined) {
      const result = this.#result
      this.#done =
        result !== undefined
          ? Promise.resolve(result)
          : new Promise<DeliveryResult>((resolve) => {
              this.#resolve = resolve
            })
    }
    return this.#done
  }

  /** The broker was told: `done` resolves, and the batch learns the result. Once. */
  resolve(result: DeliveryResult): void {
    this.#result = result
    this.#resolve?.(result)
    this.batch?.set(this.index, result)
  }

  /** Stops the `extend()` calls. */
  stopExtending(): void {
    this.stopRepeating()
  }

  /** A batch member's job started: its handler may run. */
  open(): void {
    this.#turn = OPEN
    this.#gate?.resolve()
  }

  /** A batch member handed back before its turn: its run releases the claim without calling the handler. */
  cancel(error: unknown): void {
    this.#turn = CANCELLED
    this.#cancelledWith = error
    this.#gate?.reject(error)
  }

  /** Undefined once the handler may run; else a promise of that (rejected when cancelled). */
  turn(): Promise<void> | undefined {
    if (this.#turn === OPEN) return undefined
    if (this.#turn === CANCELLED) return Promise.reject(this.#cancelledWith)
    if (this.#gate === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      this.#gate = { promise, resolve, reject }
    }
    return this.#gate.promise
  }

  protected override tick(): void {
    if (this.#extending) return
    this.#extending = true
    const delivery = this.delivery
    Promise.resolve()
      .then(() => delivery.extend?.())
      .catch((error: unknown) => this.#events.emit('broker_error', { key: delivery.key, operation: 'extend', error }))
      .finally(() => {
        this.#extending = false
      })
  }
}
