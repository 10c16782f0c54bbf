// The core: claim a key, run the function once, store its outcome, replay it to duplicates.
// `Idempotency` is the public face; the steps live in pipeline.ts (shared), run.ts,
// run-many.ts and transaction.ts.

import type { IdempotencyStore } from '../contract/types.js'
import type { SqlDatabase } from '../sql/core/executor.js'
import type { IdempotencyEventName, IdempotencyListener } from './events.js'
import { recordId, validateKey } from './key.js'
import type { IdempotencyOptions, RunInput } from './options.js'
import { Pipeline } from './pipeline.js'
import type { Probe } from './probe.js'
import { run } from './run.js'
import type { RunContext, RunResult } from './run-context.js'
import { runMany } from './run-many.js'
import {
  runInTransaction,
  type TransactionContext,
  type TransactionInput,
  type TransactionOutcome,
} from './transaction.js'

export { derivedKey } from './derived-key.js'
export type { RunContext, RunResult } from './run-context.js'

/**
 * Exactly-once effects over at-least-once delivery: `run` executes a function at most once per
 * (scope, key) while its record is retained, and replays the stored outcome to duplicates.
 *
 * @example
 * ```ts
 * import { Idempotency, MemoryStore } from 'idem'
 *
 * const idem = new Idempotency({ store: new MemoryStore(), ttl: '24h' })
 * const { status, value } = await idem.run({ key: order.id, payload: order }, async (ctx) =>
 *   payments.charge(order, { idempotencyKey: ctx.derivedKey('charge') }),
 * )
 * // status: 'executed' the first time, 'replayed' for every duplicate (with the same value)
 * ```
 */
export class Idempotency {
  readonly store: IdempotencyStore
  readonly #core: Pipeline

  constructor(options: IdempotencyOptions) {
    this.#core = new Pipeline(options)
    this.store = this.#core.givenStore
  }

  /** The largest outcome `run` stores, in UTF-8 bytes of its JSON (the `maxResultBytes` option). */
  get maxResultBytes(): number {
    return this.#core.maxResultBytes
  }

  /** The key id new outcomes are encrypted under (`encryption.current`); undefined without encryption. */
  get encryptionKeyId(): string | undefined {
    return this.#core.cipher?.currentKeyId
  }

  /** Executions that ran without protection because the store failed and `failOpen` was set. */
  get failOpenExecutions(): number {
    return this.#core.failOpenExecutions
  }

  on<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): () => void {
    return this.#core.events.on(name, listener)
  }

  off<E extends IdempotencyEventName>(name: E, listener: IdempotencyListener<E>): void {
    this.#core.events.off(name, listener)
  }

  /**
   * Attach a probe (what `idem/metrics` and `idem/tracing` attach for you): it is told how long
   * each store call took and may wrap each call and each execution of the function. Returns a
   * function that detaches it. Without a probe, none of this costs anything.
   */
  instrument(probe: Probe): () => void {
    return this.#core.instrument(probe)
  }

  /** True when `run` stores `error` as the outcome (its `isFinal` policy) instead of releasing the claim. */
  isFinal(error: unknown): boolean {
    return this.#core.isFinal(this.#core.policy, error)
  }

  /** The record id a (scope, key) pair is stored under. */
  recordId(key: string, scope = this.#core.policy.scope): string {
    return recordId(validateKey(scope, 'scope'), validateKey(key))
  }

  /**
   * Run `fn` at most once per (scope, key) while its record is retained. A duplicate receives the
   * stored outcome (`status: 'replayed'`); a duplicate of a running call gets `IN_PROGRESS` or waits.
   */
  run<T>(input: RunInput, fn: (ctx: RunContext) => Promise<T> | T): Promise<RunResult<T>> {
    return run(this.#core, input, fn)
  }

  /**
   * `run` for many inputs at once: the keys are claimed in one store round trip (`beginMany`) and
   * the outcomes stored in few (`completeMany`). Returns one promise per input, in order, each
   * settling as `run` would; `fn` gets the input's index. An id given twice runs its later copy
   * after the first settled (so it replays).
   */
  runMany<T>(
    inputs: readonly RunInput[],
    fn: (ctx: RunContext, index: number) => Promise<T> | T,
  ): Promise<RunResult<T>>[] {
    return runMany(this.#core, inputs, fn)
  }

  /**
   * Transaction mode (inbox): claim the key, run `fn` and store its outcome in one transaction of
   * your database, so the record and your writes commit together or not at all. `db` comes from
   * an adapter (`fromPg`, `fromMysql2`, `fromBetterSqlite3`, `fromKysely`, `fromKnex`,
   * `fromDrizzle`); `fn` receives that transaction's handle. Needs a SQL store on the same database.
   */
  transaction<Tx, T>(
    db: SqlDatabase<Tx>,
    input: TransactionInput,
    fn: (tx: Tx, ctx: TransactionContext) => Promise<T> | T,
  ): Promise<TransactionOutcome<T>> {
    return runInTransaction(this.#core, db, input, fn)
  }
}
