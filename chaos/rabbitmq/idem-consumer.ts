// The worker behind Idem on RabbitMQ: consumeAmqp on the combination's quorum queue, in run() mode
// or in transaction mode, with the consumer core's options every broker of the run shares.

import { consumeAmqp } from 'idem/amqp'
import type { RunConsumerOptions } from 'idem/consumer'
import type { SqlDatabase } from 'idem/sql'
import type { ChaosPayment } from '../payment.js'
import type { WorkerConfig } from '../worker-config.js'
import { connectThroughProxy, prefetchOf } from './worker-connection.js'

export interface RabbitMqIdemOptions {
  config: WorkerConfig
  /** The consumer core's options of the run (idem, lease, concurrency, backoff, maxAttempts, listeners…). */
  common: Omit<RunConsumerOptions<ChaosPayment>, 'handler'>
  /** Transaction mode when given. */
  sqlDatabase: SqlDatabase<unknown> | undefined
  /** The charge: `tx` is the open transaction in transaction mode. */
  handler(payment: ChaosPayment, attempt: number, tx?: unknown): Promise<void>
}

export async function consumeRabbitMqWithIdem(o: RabbitMqIdemOptions): Promise<{ close(): Promise<void> }> {
  const connection = await connectThroughProxy(o.config)
  // Idem's dead-letter queue and delay queues are declared by consumeAmqp (assertTopology).
  const source = { client: connection, queue: o.config.topic, prefetch: prefetchOf(o.config), onError: () => {} }
  try {
    const consumer =
      o.sqlDatabase === undefined
        ? await consumeAmqp<ChaosPayment>({
            ...source,
            ...o.common,
            handler: (payment, ctx) => o.handler(payment, ctx.attempt),
          })
        : await consumeAmqp<ChaosPayment, unknown>({
            ...source,
            ...o.common,
            db: o.sqlDatabase,
            transactionHandler: (tx, payment, ctx) => o.handler(payment, ctx.attempt, tx),
          })
    return {
      async close() {
        await consumer.close()
        await connection.close()
      },
    }
  } catch (error) {
    await connection.close().catch(() => {})
    throw error
  }
}
