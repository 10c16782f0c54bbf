// The broker-agnostic consumer (docs/architecture.md, "Consumers"): per delivery, claim (or open a transaction), run the
// handler, store the outcome, and only then acknowledge. Adapters translate broker messages into
// `Delivery` objects and feed them here; they never decide acks themselves.

import { setTimeout as sleep } from 'node:timers/promises'
import { positiveInteger, toMs } from '../contract/duration.js'
import { Emitter, type Listener } from '../core/emitter.js'
import { type Decision, SHUTDOWN } from './decide.js'
import { Lanes } from './lanes.js'
import { Runner } from './runner.js'
import { BatchResults, Task } from './task.js'
import type {
  ConsumerEvents,
  ConsumerListeners,
  ConsumerOptions,
  Delivery,
  DeliveryResult,
  DeliveryWindow,
} from './types.js'
import { type WindowGate, windowed, windowedBatch } from './window-gate.js'

const DEFAULT_CONCURRENCY = 8
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000

/**
 * The broker-agnostic consumer: per delivery, claim (or open a transaction), run the handler,
 * store the outcome, and only then tell the broker. Broker adapters (`consumeAmqp`,
 * `consumeJetStream`, `consumeRedisStream`, `consumeMqtt`) build one from their options, or take
 * a ready-made one as `consumer`.
 *
 * @example
 * ```ts
 * import { IdempotentConsumer } from 'idem/consumer'
 * const consumer = new IdempotentConsumer<Order>({
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 *   on: { settled: (result) => metrics.count(result.outcome) },
 * })
 * // Then hand it to an adapter: consumeAmqp({ client: connection, queue: 'orders', consumer })
 * ```
 */
export class IdempotentConsumer<P = unknown, Tx = unknown> {
  readonly #runner: Runner<P, Tx>
  readonly #concurrency: number
  readonly #shutdownMs: number
  readonly #lanes: Lanes<Task<P>>
  readonly #events = new Emitter<ConsumerEvents>()
  /** Accepted and not yet settled. */
  readonly #active = new Set<Task<P>>()
  /** Aborted when `close()` stops waiting for running handlers. */
  readonly #shutdown = new AbortController()
  #capacityWaiters: { wanted: number; resolve: () => void }[] = []
  /** The promise the last broker call returned, and the tasks waiting on it (see #report). */
  #telling: Promise<void> | undefined = undefined
  #tellingTasks: Task<P>[] = []
  #closed: Promise<void> | undefined
  readonly #window: DeliveryWindow | undefined
  readonly #windowSource: (delivery: Delivery<P>) => string

  constructor(options: ConsumerOptions<P, Tx>) {
    this.#runner = new Runner(options, this.#shutdown.signal)
    const { window, windowSource } = options
    if (window !== undefined && (typeof window?.seen !== 'function' || typeof window.seenMany !== 'function')) {
      throw new TypeError('window must be a DedupWindow (idem/window), e.g. new DedupWindow({ store, window: "10m" })')
    }
    this.#window = window
    const scope = options.scope ?? ''
    this.#windowSource = windowSource ?? (() => scope)
    this.#concurrency = positiveInteger(options.concurrency ?? DEFAULT_CONCURRENCY, 'concurrency')
    this.#shutdownMs =
      options.shutdownTimeout === undefined
        ? DEFAULT_SHUTDOWN_TIMEOUT_MS
        : toMs(options.shutdownTimeout, 'shutdownTimeout')
    this.#lanes = new Lanes<Task<P>>(this.#concurrency, (task) => this.#process(task))
    if (options.on !== undefined) this.listen(options.on)
  }

  /** Accepted deliveries not yet settled (queued or running). */
  get inFlight(): number {
    return this.#active.size
  }

  /** Deliveries after which a failing message is dead-lettered (adapters check broker limits against it). */
  get maxAttempts(): number {
    return this.#runner.maxAttempts
  }

  /** How many more deliveries fit (`concurrency - inFlight`, at least 0): pull adapters fetch at most this many. */
  get capacity(): number {
    return Math.max(0, this.#concurrency - this.#active.size)
  }

  /**
   * Resolves when `capacity >= atLeast` (default 1; at most `concurrency` is waited for). Pull
   * adapters wait here for room worth a pull, rather than listen to every `settled` event (which
   * the consumer then has to build for each message).
   */
  whenCapacity(atLeast = 1): Promise<void> {
    const wanted = Math.max(1, Math.min(atLeast, this.#concurrency))
    if (this.capacity >= wanted) return Promise.resolve()
    return new Promise((resolve) => this.#capacityWaiters.push({ wanted, resolve }))
  }

  /** True once `close()` was called: new deliveries are handed back unhandled. */
  get closing(): boolean {
    return this.#closed !== undefined
  }

  /** Listen to one event; returns a function that stops listening. */
  on<K extends keyof ConsumerEvents>(name: K, listener: Listener<ConsumerEvents, K>): () => void {
    return this.#events.on(name, listener)
  }

  /** Stop `listener` listening to `name`. */
  off<K extends keyof ConsumerEvents>(name: K, listener: Listener<ConsumerEvents, K>): void {
    this.#events.off(name, listener)
  }

  /** Attach the listeners of an `on` option (what the constructor does with `options.on`); returns a function that detaches them. */
  listen(listeners: ConsumerListeners): () => void {
    if (listeners === null || typeof listeners !== 'object') {
      throw new TypeError('on must be an object of listeners, e.g. { settled: (result) => … }')
    }
    const offs: (() => void)[] = []
    for (const name of Object.keys(listeners) as (keyof ConsumerEvents)[]) {
      const listener = listeners[name]
      if (listener === undefined) continue
      if (!EVENTS.has(name) || typeof listener !== 'function') {
        throw new TypeError(`on.${String(name)} must be a function, and one of ${[...EVENTS].join(', ')}`)
      }
      offs.push(this.#events.on(name, listener as Listener<ConsumerEvents, typeof name>))
    }
    return () => {
      for (const off of offs) off()
    }
  }

  /**
   * Queue one delivery (bounded concurrency, one at a time per `orderingKey ?? key`) and settle it:
   * claim, run, complete, then ack; duplicate → ack; in progress elsewhere → retry after the lease;
   * failure → retry with backoff or, at `maxAttempts`, deadLetter(reason). With a `window`, a
   * first delivery whose key it saw is acked unrun first (docs/window.md). Resolves once the broker
   * was told; never rejects (a broker refusal is reported as `broker_error`).
   */
  handle(delivery: Delivery<P>): Promise<DeliveryResult> {
    if (this.#closed !== undefined) return this.#refuse(delivery)
    // Only a first delivery asks the window: a redelivery may be of a message whose first handling
    // never finished (a crash after the mark), and the record decides it instead.
    if (this.#window !== undefined && delivery.deliveryCount <= 1) return windowed(this.#gate(this.#window), delivery)
    return this.#handleNow(delivery)
  }

  #handleNow(delivery: Delivery<P>): Promise<DeliveryResult> {
    if (this.#closed !== undefined) return this.#refuse(delivery)
    const task = this.#accept(delivery, laneOf(delivery), false)
    this.#lanes.push(task)
    return task.done
  }

  /**
   * The same for a batch. In run mode every key is claimed in one store round trip (`beginMany`)
   * and the outcomes stored in few (`completeMany`); each message is still acknowledged as soon as
   * it settles, so one failure never sends back work that is done. Messages whose ordering key is
   * busy (with earlier work, or with another member of the batch) are claimed with the others and
   * run after it, in order, their leases renewed while they wait: a pull adapter that hands out the
   * next batch of a Kafka partition while the last still runs keeps batched claims. A message
   * whose key is repeated in the batch, or still running here from an earlier batch, waits for
   * that copy and goes through `handle` (a replay once it is done); claimed with the batch, it
   * would find its own process's claim and be handed back for a lease.
   */
  handleBatch(deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]> {
    if (this.#window !== undefined && this.#closed === undefined) {
      return windowedBatch(this.#gate(this.#window), deliveries)
    }
    return this.#handleBatchNow(deliveries)
  }

  #handleBatchNow(deliveries: readonly Delivery<P>[]): Promise<DeliveryResult[]> {
    if (this.#closed !== undefined || !this.#runner.batches || deliveries.length < 2) {
      return Promise.all(deliveries.map((delivery) => this.#handleNow(delivery)))
    }
    const batch = new BatchResults(deliveries.length)
    const claimed: Task<P>[] = []
    // The keys at work here already (at most `concurrency` of them, once per batch), then this batch's.
    const keys = new Set<string>()
    for (const task of this.#active) keys.add(task.delivery.key)
    for (let i = 0; i < deliveries.length; i++) {
      const delivery = deliveries[i] as Delivery<P>
      if (keys.has(delivery.key)) {
        // #handleNow, not handle: with a window, this copy was asked about with the batch already.
        void this.#handleNow(delivery).then((result) => batch.set(i, result))
        continue
      }
      keys.add(delivery.key)
      const task = this.#accept(delivery, laneOf(delivery), true)
      task.batch = batch
      task.index = i
      claimed.push(task)
      this.#lanes.push(task)
    }
    this.#runner.runBatch(claimed, this.#decided)
    return batch.promise
  }

  /**
   * Stop accepting; hand queued deliveries back (retry(0)); let running handlers finish up to
   * `shutdownTimeout`; then abort them (their `ctx.signal`) and hand their deliveries back too.
   * Nothing unfinished is ever acknowledged. Adapters stop fetching first, then call this.
   */
  close(): Promise<void> {
    this.#closed ??= this.#drain()
    return this.#closed
  }

  async #drain(): Promise<void> {
    const queued = this.#lanes.drain()
    // A batch member whose claim is held: its run releases the claim without running the handler.
    for (const task of queued) if (task.batched) task.cancel(SHUTDOWN_ERROR)
    await Promise.all(queued.map((task) => this.#settleAndWait(task, SHUTDOWN)))
    if (this.#active.size === 0) return
    const timer = new AbortController()
    const finished = Promise.all([...this.#active].map((task) => task.done)).then(() => true)
    const expired = sleep(this.#shutdownMs, false, { signal: timer.signal }).catch(() => true)
    const inTime = await Promise.race([finished, expired])
    timer.abort()
    if (inTime) return
    this.#shutdown.abort(SHUTDOWN_ERROR)
    // Hand back now rather than wait for handlers that may ignore the signal: their claim is
    // released by run()'s failure path, or lapses with the process.
    await Promise.all([...this.#active].map((task) => this.#settleAndWait(task, SHUTDOWN)))
  }

  #accept(delivery: Delivery<P>, lane: string, batched: boolean): Task<P> {
    const task = new Task(delivery, lane, batched, this.#events)
    this.#active.add(task)
    this.#received(delivery)
    return task
  }

  /**
   * A job's turn in the lanes: run (or, in a batch, let run) the delivery, then settle it. Promise
   * reactions rather than an async function: this runs once per message.
   */
  #process(task: Task<P>): void {
    task.running = true
    if (!task.batched) {
      if (task.settled) this.#lanes.finish(task)
      else void this.#runner.run(task.delivery, task).then((decision) => this.#settle(task, decision))
      return
    }
    task.open()
    if (task.settled) {
      this.#lanes.finish(task)
      return
    }
    // A batch member's decision arrives through #decided, never before handleBatch returned; if it
    // came before the member's turn, it waited here.
    if (task.decision !== undefined) this.#settle(task, task.decision)
  }

  /** A batch member's decision: settled now if its turn came, else when it comes (in order behind its lane). */
  readonly #decided = (task: Task<P>, decision: Decision): void => {
    if (task.running) this.#settle(task, decision)
    else task.decision = decision
  }

  /** Tell the broker, once, and report. */
  #settle(task: Task<P>, decision: Decision): void {
    if (task.settled) return
    task.settled = true
    task.stopExtending()
    this.#report(task, decision)
  }

  #settleAndWait(task: Task<P>, decision: Decision): Promise<DeliveryResult> {
    this.#settle(task, decision)
    return task.done
  }

  /**
   * Tell the broker, then report once it answered. Adapters answer many settlements of one turn
   * with one promise (a shared XACK, the channel's acks of the turn, a frame queued at once), so
   * the tasks waiting on the promise of the last call share one reaction: no async function and
   * no reaction per message.
   */
  #report(task: Task<P>, decision: Decision): void {
    const { delivery } = task
    let told: Promise<void>
    try {
      // Promise.resolve returns a native promise as it is (so that shared ones group), and turns
      // what an adapter written without types may return (undefined, a thenable) into one.
      if (decision.action === 'ack') told = Promise.resolve(delivery.ack())
      else if (decision.action === 'retry') told = Promise.resolve(delivery.retry(decision.delayMs))
      else told = Promise.resolve(delivery.deadLetter(decision.reason))
    } catch (error) {
      told = Promise.reject(error)
    }
    task.decision = decision
    if (told === this.#telling) {
      this.#tellingTasks.push(task)
      return
    }
    const tasks = [task]
    this.#telling = told
    this.#tellingTasks = tasks
    told.then(
      () => this.#told(told, tasks, false, undefined),
      (error: unknown) => this.#told(told, tasks, true, error),
    )
  }

  /** The broker answered for `tasks` (a refusal is reported as a broker_error): report each. */
  #told(told: Promise<void>, tasks: readonly Task<P>[], failed: boolean, error: unknown): void {
    // Later calls that return this same (settled) promise start a group of their own.
    if (this.#telling === told) this.#telling = undefined
    for (const task of tasks) {
      const decision = task.decision as Decision
      if (failed) this.#events.emit('broker_error', { key: task.delivery.key, operation: decision.action, error })
      const result = resultOf(task.delivery.key, decision)
      this.#active.delete(task)
      if (this.#events.has('settled')) {
        this.#events.emit('settled', settledEvent(result, performance.now() - task.receivedAt))
      }
      task.resolve(result)
      this.#wakeCapacityWaiters()
      // The lane's next job may start now that the broker was told (once: a task reports once).
      if (task.running) this.#lanes.finish(task)
    }
  }

  /** A delivery after `close()`: handed straight back, never run. */
  #refuse(delivery: Delivery<P>): Promise<DeliveryResult> {
    return this.#settleUnrun(delivery, SHUTDOWN)
  }

  /** Tell the broker `decision` for a delivery that never reached the lanes, and report it. */
  async #settleUnrun(delivery: Delivery<P>, decision: Decision): Promise<DeliveryResult> {
    const startedAt = performance.now()
    this.#received(delivery)
    await this.#tell(delivery, decision)
    const result = resultOf(delivery.key, decision)
    this.#events.emit('settled', settledEvent(result, performance.now() - startedAt))
    return result
  }

  /** The consumer's side of the window gate (window-gate.ts): its three ways to settle a delivery. */
  #gate(window: DeliveryWindow): WindowGate<P> {
    return {
      window,
      sourceOf: this.#windowSource,
      handle: (delivery) => this.#handleNow(delivery),
      handleBatch: (deliveries) => this.#handleBatchNow(deliveries),
      settleUnrun: (delivery, decision) => this.#settleUnrun(delivery, decision),
      refused: (delivery, error) => this.#runner.refused(delivery, error),
    }
  }

  async #tell(delivery: Delivery<P>, decision: Decision): Promise<void> {
    const operation = decision.action
    try {
      if (decision.action === 'ack') await delivery.ack()
      else if (decision.action === 'retry') await delivery.retry(decision.delayMs)
      else await delivery.deadLetter(decision.reason)
    } catch (error) {
      // The broker will deliver the message again; its duplicate is then settled afresh.
      this.#events.emit('broker_error', { key: delivery.key, operation, error })
    }
  }

  #received(delivery: Delivery<P>): void {
    if (this.#events.has('received')) {
      this.#events.emit('received', { key: delivery.key, deliveryCount: delivery.deliveryCount })
    }
  }

  #wakeCapacityWaiters(): void {
    if (this.#capacityWaiters.length === 0) return
    const capacity = this.capacity
    if (capacity === 0) return
    const waiters = this.#capacityWaiters
    if (!waiters.some((waiter) => waiter.wanted <= capacity)) return
    this.#capacityWaiters = waiters.filter((waiter) => waiter.wanted > capacity)
    for (const waiter of waiters) if (waiter.wanted <= capacity) waiter.resolve()
  }
}

/**
 * A settled event, its fields written out: on Node 20 `{ ...result, durationMs }` costs about half
 * a microsecond, a tenth of a delivery's whole cost in the core.
 */
function settledEvent(result: DeliveryResult, durationMs: number): ConsumerEvents['settled'] {
  const event: ConsumerEvents['settled'] = { outcome: result.outcome, key: result.key, durationMs }
  if (result.delayMs !== undefined) event.delayMs = result.delayMs
  if (result.reason !== undefined) event.reason = result.reason
  if (result.error !== undefined) event.error = result.error
  return event
}

const EVENTS: ReadonlySet<keyof ConsumerEvents> = new Set(['received', 'settled', 'broker_error'])

const SHUTDOWN_ERROR = new DOMException('The consumer closed before the handler finished', 'AbortError')

function laneOf(delivery: Delivery<unknown>): string {
  return delivery.orderingKey ?? String(delivery.key)
}

function resultOf(key: string, decision: Decision): DeliveryResult {
  const result: DeliveryResult = { outcome: decision.outcome, key }
  if (decision.action === 'retry') result.delayMs = decision.delayMs
  if (decision.reason !== undefined) result.reason = decision.reason
  if (decision.action !== 'ack' && decision.error !== undefined) result.error = decision.error
  return result
}
