// What each broker's consumer behind Idem takes from the worker (chaos/idem-consumers.ts picks the
// broker), and the bounded close the JVM brokers' clients need.

import type { RunConsumerOptions } from 'idem/consumer'
import type { SqlDatabase } from 'idem/sql'
import type { ChaosPayment } from './payment.js'
import type { WorkerConfig } from './worker-config.js'

export interface BrokerConsumerOptions {
  config: WorkerConfig
  /** The consumer core's options, the same for every broker of the run (idem, lease, concurrency, backoff, listeners…). */
  common: Omit<RunConsumerOptions<ChaosPayment>, 'handler'>
  /** Transaction mode when given. */
  sqlDatabase: SqlDatabase<unknown> | undefined
  /** The charge: `tx` is the open transaction in transaction mode. */
  handler(payment: ChaosPayment, attempt: number, tx?: unknown): Promise<void>
}

/** How long closing may take before the worker gives up on it (the run SIGKILLs a worker after 15 s). */
const CLOSE_MS = 10_000

/** Runs `close`, or gives up on it after CLOSE_MS: a client stuck on a dead broker must not hold the worker. */
export async function closeWithin(close: () => Promise<void>): Promise<void> {
  await Promise.race([close(), new Promise((resolve) => setTimeout(resolve, CLOSE_MS).unref())])
}

/** The part of an adapter's options that picks the mode: `handler` (run mode) or `db` and `transactionHandler`. */
export type ModeOptions =
  | { handler(payment: ChaosPayment, ctx: { attempt: number }): Promise<void> }
  | {
      db: SqlDatabase<unknown>
      transactionHandler(tx: unknown, payment: ChaosPayment, ctx: { attempt: number }): Promise<void>
    }

/** Run mode without a database, transaction mode with one; either way the charge gets Idem's attempt. */
export function modeOptions(o: Pick<BrokerConsumerOptions, 'sqlDatabase' | 'handler'>): ModeOptions {
  const { sqlDatabase, handler } = o
  return sqlDatabase === undefined
    ? { handler: (payment, ctx) => handler(payment, ctx.attempt) }
    : { db: sqlDatabase, transactionHandler: (tx, payment, ctx) => handler(payment, ctx.attempt, tx) }
}
