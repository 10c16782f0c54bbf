// Runs deliveries through Idem: `run()` (or `runMany()` for a batch) in run mode, `transaction()`
// in transaction mode, and turns how each ended into a Decision for the broker. Never throws.

import { toMs } from '../core/duration.js'
import type { Idempotency, RunContext, RunResult } from '../core/idempotency.js'
import type { RunInput } from '../core/options.js'
import type { TransactionInput } from '../transaction/run-transaction.js'
import { type Decision, decide, defaultBackoff, EXECUTED, REPLAYED, SHUTDOWN } from './decide.js'
import type {
  ConsumerOptions,
  Delivery,
  MessageContext,
  RunConsumerOptions,
  TransactionConsumerOptions,
} from './types.js'

/** What a run found out about the handler, for the retry policy. */
interface Progress {
  /** The handler was called. */
  started: boolean
  /** The handler returned and its work is done (run mode only: in transaction mode nothing is done before the commit). */
  returned: boolean
}

const DEFAULT_MAX_ATTEMPTS = 5

export class Runner<P, Tx> {
  readonly #idem: Idempotency
  readonly #handler: RunConsumerOptions<P>['handler'] | undefined
  readonly #transaction: TransactionConsumerOptions<P, Tx> | undefined
  readonly #record: Omit<TransactionInput, 'key' | 'payload'>
  readonly #maxAttempts: number
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
    // A duplicate of a running message goes back to the broker rather than holding a slot.
    this.#record = {
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
      ...(options.lease === undefined ? {} : { lease: options.lease }),
      ...(options.fingerprintFields === undefined ? {} : { fingerprintFields: options.fingerprintFields }),
      ...(isFinal === undefined ? {} : { isFinal }),
      onInProgress: 'reject',
    }
  }

  /** True in run mode, where a batch is claimed in one round trip. */
  get batches(): boolean {
    return this.#handler !== undefined
  }

  /** Claim, run and complete one delivery (or find it done or busy). */
  async run(delivery: Delivery<P>): Promise<Decision> {
    const progress: Progress = { started: false, returned: false }
    try {
      const out =
        this.#handler !== undefined
          ? await this.#idem.run(this.#input(delivery), (ctx) => this.#call(ctx, delivery, progress))
          : await this.#transact(delivery, progress)
      return out.status === 'executed' ? EXECUTED : REPLAYED
    } catch (error) {
      return this.#decide(error, delivery, progress)
    }
  }

  /**
   * Run mode: claim every delivery in one round trip; the i-th handler starts once `gates[i]`
   * resolves (its turn in the lanes), and not at all if it rejects (the claim is then released).
   */
  runBatch(deliveries: readonly Delivery<P>[], gates: readonly Promise<void>[]): Promise<Decision>[] {
    const progress = deliveries.map((): Progress => ({ started: false, returned: false }))
    const runs = this.#idem.runMany(
      deliveries.map((delivery) => this.#input(delivery)),
      async (ctx, i) => {
        await gates[i]
        return this.#call(ctx, deliveries[i] as Delivery<P>, progress[i] as Progress)
      },
    )
    return runs.map((run, i) =>
      run.then(
        (out) => (out.status === 'executed' ? EXECUTED : REPLAYED),
        (error: unknown) => this.#decide(error, deliveries[i] as Delivery<P>, progress[i] as Progress),
      ),
    )
  }

  #input(delivery: Delivery<P>): RunInput {
    const r = this.#record
    // One literal of one shape (undefined means "the idem's"), cheaper than a spread on the hot path.
    // A store outage never runs a handler unprotected: the broker redelivers instead.
    return {
      key: delivery.key,
      payload: delivery.payload,
      scope: r.scope,
      ttl: r.ttl,
      lease: r.lease,
      fingerprintFields: r.fingerprintFields,
      isFinal: r.isFinal,
      onInProgress: 'reject',
      failOpen: false,
    }
  }

  async #call(ctx: RunContext, delivery: Delivery<P>, progress: Progress): Promise<unknown> {
    progress.started = true
    const value = await (this.#handler as RunConsumerOptions<P>['handler'])(
      delivery.payload,
      messageContext(ctx, delivery, this.#shutdown),
    )
    progress.returned = true
    return value
  }

  #transact(delivery: Delivery<P>, progress: Progress): Promise<RunResult<unknown>> {
    const { db, transactionHandler } = this.#transaction as TransactionConsumerOptions<P, Tx>
    const { failOpen: _, ...input }: RunInput = this.#input(delivery)
    const signal = this.#shutdown
    return this.#idem.transaction(db, input, (tx, ctx) => {
      progress.started = true
      return transactionHandler(tx, delivery.payload, { ...ctx, delivery, signal })
    })
  }

  #decide(error: unknown, delivery: Delivery<P>, progress: Progress): Decision {
    if (this.#shutdown.aborted && !progress.returned) return SHUTDOWN
    const count = delivery.deliveryCount
    return decide(error, {
      ...progress,
      deliveryCount: Number.isFinite(count) && count >= 1 ? count : 1,
      maxAttempts: this.#maxAttempts,
      backoff: this.#backoff,
      isFinal: this.#isFinal,
    })
  }
}

/** The handler's context: `signal` aborts on a lost lease, or when a shutdown stops waiting. */
function messageContext<P>(ctx: RunContext, delivery: Delivery<P>, shutdown: AbortSignal): MessageContext<P> {
  let signal: AbortSignal | undefined
  return {
    key: ctx.key,
    scope: ctx.scope,
    attempt: ctx.attempt,
    recovered: ctx.recovered,
    derivedKey: ctx.derivedKey,
    delivery,
    get signal() {
      // Built on first read: reading ctx.signal is what makes the lease keeper create its own.
      signal ??= AbortSignal.any([ctx.signal, shutdown])
      return signal
    },
  }
}

export function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`${what} must be a positive integer, got ${value}`)
  return value
}
