// Renews a claim's lease while the function runs (every third of the lease), and aborts the
// function's signal when the claim is lost: another owner took over, or renewal kept failing
// until the lease had certainly run out. Also `Repeating`, the shared timers it (and the
// consumer's `extend()` calls) run on, and the `RunContext` whose signal is the keeper's.

import type { IdempotencyStore } from '../contract/types.js'
import { LeaseLostError, StoreUnavailableError } from '../errors.js'
import type { RunContext } from './idempotency.js'

/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Every repeating job of one interval, in order of their next due time, and the one timer that serves them. */
interface IntervalList {
  readonly intervalMs: number
  head: Repeating | undefined
  tail: Repeating | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  /** The time (performance.now()) the timer was set for: the head's due time, unless that was too far. */
  armedFor: number
  /** The timer functions that set it: a test that installs fake timers later gets a timer of its own. */
  armedWith: typeof setTimeout
  disarm: typeof clearTimeout
  readonly fire: () => void
}

/**
 * Something to do every `intervalMs` between `startRepeating` and `stopRepeating`, as with
 * setInterval, but on one shared timer per interval: jobs of the same interval are due in the
 * order they started, so a linked list keeps them sorted and its head says when the timer fires.
 * Starting and stopping are a few field writes, where a setInterval per job allocated a timer and
 * queued it in libuv's list, for jobs that almost always end long before their first tick.
 */
export abstract class Repeating {
  static readonly #lists = new Map<number, IntervalList>()
  #list: IntervalList | undefined = undefined
  #prev: Repeating | undefined = undefined
  #next: Repeating | undefined = undefined
  #due = 0

  /** Called every interval while started. Must not throw. */
  protected abstract tick(): void

  protected startRepeating(intervalMs: number): void {
    if (this.#list !== undefined) return
    let list = Repeating.#lists.get(intervalMs)
    if (list === undefined) {
      const created: IntervalList = {
        intervalMs,
        head: undefined,
        tail: undefined,
        timer: undefined,
        armedFor: 0,
        armedWith: setTimeout,
        disarm: clearTimeout,
        fire: () => Repeating.#fire(created),
      }
      list = created
      Repeating.#lists.set(intervalMs, list)
    }
    this.#due = performance.now() + intervalMs
    Repeating.#append(list, this)
    if (list.timer === undefined) {
      Repeating.#arm(list)
    } else if (list.armedWith !== setTimeout || this.#due < list.armedFor) {
      list.disarm(list.timer)
      Repeating.#arm(list)
    }
  }

  /** Idempotent. The shared timer is left to fire: it then finds nothing due and sets itself for the next job, if any. */
  protected stopRepeating(): void {
    const list = this.#list
    if (list !== undefined) Repeating.#unlink(list, this)
  }

  static #append(list: IntervalList, job: Repeating): void {
    job.#list = list
    job.#prev = list.tail
    job.#next = undefined
    if (list.tail === undefined) list.head = job
    else list.tail.#next = job
    list.tail = job
  }

  static #unlink(list: IntervalList, job: Repeating): void {
    const prev = job.#prev
    const next = job.#next
    if (prev === undefined) list.head = next
    else prev.#next = next
    if (next === undefined) list.tail = prev
    else next.#prev = prev
    job.#list = undefined
    job.#prev = undefined
    job.#next = undefined
  }

  static #arm(list: IntervalList): void {
    const head = list.head
    if (head === undefined) {
      // Nothing left to serve: forget the list, so that intervals used once do not pile up.
      list.timer = undefined
      Repeating.#lists.delete(list.intervalMs)
      return
    }
    const now = performance.now()
    // Capped at setTimeout's maximum (which would otherwise fire after 1 ms): a later due time is
    // simply not due yet when the timer fires, and it is set again.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(head.#due - now)))
    list.armedFor = Math.min(head.#due, now + delay)
    list.armedWith = setTimeout
    list.disarm = clearTimeout
    list.timer = setTimeout(list.fire, delay)
    list.timer.unref?.()
  }

  static #fire(list: IntervalList): void {
    list.timer = undefined
    // At least the due time the timer was set for: a timer never runs its head late twice, and a
    // clock that the timers do not follow (a test's fake timers) still gets its ticks.
    const now = Math.max(performance.now(), list.armedFor)
    try {
      for (let job = list.head; job !== undefined && job.#due <= now; job = list.head) {
        // Rescheduled before it runs, as setInterval does, so a tick that stops its job wins.
        Repeating.#unlink(list, job)
        job.#due = now + list.intervalMs
        Repeating.#append(list, job)
        job.tick()
      }
    } finally {
      if (list.timer === undefined) Repeating.#arm(list)
    }
  }
}

export interface LeaseKeeperHooks<C> {
  onLost(context: C, error: LeaseLostError): void
  onStoreError(context: C, error: unknown): void
}

export class LeaseKeeper<C = unknown> extends Repeating {
  /** Made on first read of `signal`: most functions never look at it, and it is not free. */
  #controller: AbortController | undefined
  #lostWith: LeaseLostError | undefined
  readonly #store: IdempotencyStore
  readonly #id: string
  readonly #token: string
  readonly #leaseMs: number
  /** Shared by every keeper of one Idempotency; `context` tells them which claim. */
  readonly #hooks: LeaseKeeperHooks<C>
  readonly #context: C
  /** Local-clock instant by which the lease surely ends if no renewal succeeds. */
  #localDeadline: number
  #renewing = false
  #stopped = false

  constructor(
    store: IdempotencyStore,
    id: string,
    token: string,
    leaseMs: number,
    hooks: LeaseKeeperHooks<C>,
    context: C,
  ) {
    super()
    this.#store = store
    this.#id = id
    this.#token = token
    this.#leaseMs = leaseMs
    this.#hooks = hooks
    this.#context = context
    this.#localDeadline = Date.now() + leaseMs
    this.startRepeating(Math.max(1, Math.floor(leaseMs / 3)))
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#lostWith !== undefined) this.#controller.abort(this.#lostWith)
    }
    return this.#controller.signal
  }

  stop(): void {
    this.#stopped = true
    this.stopRepeating()
  }

  protected override tick(): void {
    void this.#renew()
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#stopped) return
    this.#renewing = true
    const startedAt = Date.now()
    try {
      await this.#store.extend(this.#id, this.#token, this.#leaseMs)
      // Measured from when the request left: the store's deadline cannot be later than this.
      this.#localDeadline = startedAt + this.#leaseMs
    } catch (error) {
      if (this.#stopped) return
      if (error instanceof LeaseLostError) {
        this.#lose(error)
      } else {
        this.#hooks.onStoreError(this.#context, error)
        if (Date.now() >= this.#localDeadline) {
          const lost = new LeaseLostError(
            `Lease on "${this.#id}" ran out while the store could not be reached to renew it`,
            { recordId: this.#id, cause: new StoreUnavailableError('Lease renewal failed', { cause: error }) },
          )
          this.#lose(lost)
        }
      }
    } finally {
      this.#renewing = false
    }
  }

  #lose(error: LeaseLostError): void {
    this.stop()
    this.#lostWith = error
    this.#hooks.onLost(this.#context, error)
    this.#controller?.abort(error)
  }
}

/**
 * The `RunContext` of an execution. The same own, enumerable properties in the same order as an
 * object literal with a `signal` getter would have (so a spread or Object.keys sees no
 * difference), but built far cheaper: V8 builds a literal with a getter on a slow path, about
 * 0.7 µs, while this shares one accessor between all contexts.
 */
export class ExecutionContext implements RunContext {
  declare key: string
  declare scope: string
  declare attempt: number
  declare recovered: boolean
  declare readonly signal: AbortSignal
  declare derivedKey: (name: string) => string
  readonly #keeper: LeaseKeeper

  static readonly #signal: PropertyDescriptor = {
    get(this: ExecutionContext): AbortSignal {
      return this.#keeper.signal
    },
    enumerable: true,
    configurable: true,
  }

  constructor(
    base: { key: string; scope: string },
    attempt: number,
    recovered: boolean,
    keeper: LeaseKeeper,
    derivedKey: (name: string) => string,
  ) {
    this.#keeper = keeper
    this.key = base.key
    this.scope = base.scope
    this.attempt = attempt
    this.recovered = recovered
    Object.defineProperty(this, 'signal', ExecutionContext.#signal)
    this.derivedKey = derivedKey
  }
}
