// Runs deliveries through Idem: `run()` (or `runMany()` for a batch) in run mode, `transaction()`
// in transaction mode, and turns how each ended into a Decision for the broker. Never throws.

import { positiveInteger, toMs } from '../contract/duration.js'
import type { Idempotency, RunContext, RunResult } from '../core/idempotency.js'
import { POLICY_FIELDS, type PolicyOptions, type RunInput } from '../core/options.js'
import { type Decision, decide, defaultBackoff, EXECUTED, REPLAYED, SHUTDOWN } from './decide.js'
import { DeliveryWithdrawnError } from './stale-delivery.js'
import type {
  ConsumerOptions,
  Delivery,
  MessageContext,
  RunConsumerOptions,
  TransactionConsumerOptions,
} from './types.js'

/** What a run found out about the handler, for the retry policy. */
export interface Progress {
  /** The handler was called. */
  started: boolean
  /** The handler returned and its work is done (run mode only: in transaction mode nothing is done before the commit). */
  returned: boolean
}

/** A delivery of a batch: its handler runs once its turn in the lanes came, not at all if it was cancelled. */
export interface BatchMember<P> extends Progress {
  readonly delivery: Delivery<P>
  /** Undefined when the handler may run now; else a promise that resolves when it may, rejected if it never will. */
  turn(): Promise<void> | undefined
}

const DEFAULT_MAX_ATTEMPTS = 5

export class Runner<P, Tx> {
  readonly #idem: Idempotency
  readonly #handler: RunConsumerOptions<P>['handler'] | undefined
  readonly #transaction: TransactionConsumerOptions<P, Tx> | undefined
  readonly #record: PolicyOptions
  readonly #maxAttempts: number

  /** Deliveries after which a failing message is dead-lettered. */
  get maxAttempts(): number {
    return this.#maxAttempts
  }
  readonly #backoff: (attempt: number) => number
  readonly #isFinal: (error: unknown) => boolean
  readonly #shutdown: AbortSignal

  /** Validates the options; `shutdown` aborts when `close()` stops waiting for handlers. */
  constructor(options: ConsumerOptions<P, Tx>, shutdown: AbortSignal) {
    if (options?.idem === undefined) throw new TypeError('IdempotentConsumer needs an Idempotency: { idem, handler }')
    this.#idem = options.idem
    const { handler } = options as Partial<RunConsumerOptions<P>>
    const tx = options as TransactionConsumerOptions<P, Tx>
    if ((typeof handler === 'function') === (typeof tx.transactionHandler === 'function')) {
      throw new TypeError('IdempotentConsumer needs either a handler (run mode) or a db and a transactionHandler')
    }
    if (typeof handler === 'function') this.#handler = handler
    else if (tx.db === undefined) throw new TypeError('Transaction mode needs a db (fromPg, fromBetterSqlite3, …)')
    else this.#transaction = tx
    this.#maxAttempts = positiveInteger(options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 'maxAttempts')
    this.#backoff = options.backoff ?? defaultBackoff
    const { isFinal } = options
    this.#isFinal = isFinal ?? ((error) => this.#idem.isFinal(error))
    this.#shutdown = shutdown
    if (options.ttl !== undefined) toMs(options.ttl, 'ttl')
    if (options.lease !== undefined) toMs(options.lease, 'lease')
    this.#record = consumerPolicy(options)
  }

  /** True in run mode, where a batch is claimed in one round trip. */
  get batches(): boolean {
    return this.#handler !== undefined
  }

  /** The decision for a delivery that failed before its claim (the dedup window was down): as for a failed claim. */
  refused(delivery: Delivery<P>, error: unknown): Decision {
    return this.#decide(error, delivery, { started: false, returned: false })
  }

  /** Claim, run and complete one delivery (or find it done or busy); `progress` starts all false. */
  run(delivery: Delivery<P>, progress: Progress = { started: false, returned: false }): Promise<Decision> {
    let out: Promise<RunResult<unknown>>
    try {
      out =
        this.#handler !== undefined
          ? this.#idem.run(this.#input(delivery), (ctx) => this.#call(ctx, delivery, progress))
          : this.#transact(delivery, progress)
    } catch (error) {
      out = Promise.reject(error)
    }
    // One reaction rather than an async function: this runs once per message.
    return Promise.resolve(out).then(statusDecision, (error: unknown) => this.#decide(error, delivery, progress))
  }

  /**
   * Run mode: claim every delivery in one round trip; a member's handler starts once its turn in
   * the lanes came, and not at all if it was cancelled (the claim is then released). Each member's
   * progress starts all false. `decided(member, decision)` is called once per member, always after
   * this returns: a callback rather than a promise per member, which the consumer would only await.
   */
  runBatch<M extends BatchMember<P>>(members: readonly M[], decided: (member: M, decision: Decision) => void): void {
    const inputs: RunInput[] = []
    for (const member of members) inputs.push(this.#input(member.delivery))
    const runs = this.#idem.runMany(inputs, (ctx, i) => {
      const member = members[i] as M
      const turn = member.turn()
      if (turn === undefined) return this.#call(ctx, member.delivery, member)
      return turn.then(() => this.#call(ctx, member.delivery, member))
    })
    for (let i = 0; i < runs.length; i++) {
      const member = members[i] as M
      ;(runs[i] as Promise<RunResult<unknown>>).then(
        (out) => decided(member, statusDecision(out)),
        (error: unknown) => decided(member, this.#decide(error, member.delivery, member)),
      )
    }
  }

  #input(delivery: Delivery<P>): RunInput {
    // Every policy field is present in the record (undefined means "the idem's"): one shape.
    return { key: delivery.key, payload: delivery.payload, ...this.#record, origin: delivery }
  }

  /** Calls the handler; `progress.returned` is set once what it returned has settled (and not if it failed). */
  #call(ctx: RunContext, delivery: Delivery<P>, progress: Progress): unknown {
    if (delivery.withdrawn?.() === true) throw new DeliveryWithdrawnError(delivery.key)
    progress.started = true
    const value = (this.#handler as RunConsumerOptions<P>['handler'])(
      delivery.payload,
      new HandlerContext(ctx, delivery, this.#shutdown),
    )
    // The usual async handler: one reaction, rather than an async function around it.
    if (value instanceof Promise) return value.then((result: unknown) => returned(progress, result))
    // Anything else that may be a thenable is awaited as before (its `then` read once, by await).
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) return settled(value, progress)
    progress.returned = true
    return value
  }

  #transact(delivery: Delivery<P>, progress: Progress): Promise<RunResult<unknown>> {
    const { db, transactionHandler } = this.#transaction as TransactionConsumerOptions<P, Tx>
    const { failOpen: _, ...input }: RunInput = this.#input(delivery)
    const signal = this.#shutdown
    return this.#idem.transaction(db, input, (tx, ctx) => {
      if (delivery.withdrawn?.() === true) throw new DeliveryWithdrawnError(delivery.key)
      progress.started = true
      return transactionHandler(tx, delivery.payload, { ...ctx, delivery, signal })
    })
  }

  #decide(error: unknown, delivery: Delivery<P>, progress: Progress): Decision {
    if (this.#shutdown.aborted && !progress.returned) return SHUTDOWN
    const count = delivery.deliveryCount
    return decide(error, {
      // Named, not spread: the progress may be the consumer's whole task.
      started: progress.started,
      returned: progress.returned,
      deliveryCount: Number.isFinite(count) && count >= 1 ? count : 1,
      maxAttempts: this.#maxAttempts,
      backoff: this.#backoff,
      isFinal: this.#isFinal,
    })
  }
}

function returned(progress: Progress, result: unknown): unknown {
  progress.returned = true
  return result
}

async function settled(value: unknown, progress: Progress): Promise<unknown> {
  return returned(progress, await value)
}

function statusDecision(out: RunResult<unknown>): Decision {
  return out.status === 'executed' ? EXECUTED : REPLAYED
}

/**
 * The handler's context: `signal` aborts on a lost lease, or when a shutdown stops waiting. Its
 * own enumerable properties are those of a literal with a `signal` getter, in the same order,
 * but it is built without V8's slow path for such a literal (one shared accessor instead).
 */
class HandlerContext<P> implements MessageContext<P> {
  declare key: string
  declare scope: string
  declare attempt: number
  declare recovered: boolean
  declare derivedKey: (name: string) => string
  declare delivery: Delivery<P>
  declare readonly signal: AbortSignal
  readonly #ctx: RunContext
  readonly #shutdown: AbortSignal
  #signal: AbortSignal | undefined = undefined

  static readonly #signalProperty: PropertyDescriptor = {
    get(this: HandlerContext<unknown>): AbortSignal {
      // Built on first read: reading ctx.signal is what makes the lease keeper create its own.
      this.#signal ??= AbortSignal.any([this.#ctx.signal, this.#shutdown])
      return this.#signal
    },
    enumerable: true,
    configurable: true,
  }

  constructor(ctx: RunContext, delivery: Delivery<P>, shutdown: AbortSignal) {
    this.#ctx = ctx
    this.#shutdown = shutdown
    this.key = ctx.key
    this.scope = ctx.scope
    this.attempt = ctx.attempt
    this.recovered = ctx.recovered
    this.derivedKey = ctx.derivedKey
    this.delivery = delivery
    Object.defineProperty(this, 'signal', HandlerContext.#signalProperty)
  }
}

/**
 * The per-message record options, derived from the core's list of policy fields: every field is
 * set (undefined where the options leave it to the idem), except two the consumer decides. A
 * duplicate of a running message goes back to the broker rather than holding a slot
 * (`onInProgress: 'reject'`), and a store outage never runs a handler unprotected: the broker
 * redelivers instead (`failOpen: false`).
 */
function consumerPolicy(options: PolicyOptions): PolicyOptions {
  const record: Record<string, unknown> = {}
  for (const field of POLICY_FIELDS) record[field] = options[field]
  record.onInProgress = 'reject'
  record.failOpen = false
  return record as PolicyOptions
}
