// A worker's consumer behind Idem on RocketMQ: consumeRocketMQ over a SimpleConsumer of the
// combination's group, through the proxy, with a dead-letter producer of its own.

import type { Idempotency } from 'idem'
import type { ConsumerListeners } from 'idem/consumer'
import { consumeRocketMQ } from 'idem/rocketmq'
import type { SqlDatabase } from 'idem/sql'
import type { ChaosPayment } from '../payment.js'
import type { WorkerConfig } from '../worker-config.js'
import { INVISIBLE_MS, rocketmqNames, startConsumer, startProducer } from './clients.js'

export interface RocketMQIdemConsumerOptions {
  config: WorkerConfig
  /** The consumer core's options, the same for every broker of the run. */
  common: {
    idem: Idempotency
    lease: number
    concurrency: number
    backoff: () => number
    maxAttempts: number
    shutdownTimeout: string
    on: ConsumerListeners
  }
  /** Transaction mode when given. */
  sqlDatabase: SqlDatabase<unknown> | undefined
  handler(payment: ChaosPayment, attempt: number, tx?: unknown): Promise<void>
}

/** How long closing may take before the worker gives up on it (the run SIGKILLs a worker after 15 s). */
const CLOSE_MS = 10_000

export async function consumeRocketMQWithIdem(o: RocketMQIdemConsumerOptions): Promise<{ close(): Promise<void> }> {
  const { config, common, handler } = o
  const names = rocketmqNames(config.topic)
  const endpoint = `127.0.0.1:${config.brokerPort}`
  // A start that fails ends the worker (a fault met at start): the run starts it again.
  const client = await startConsumer({ endpoint, group: names.group, topic: names.topic })
  const producer = await startProducer({ endpoint, topic: names.dead })
  const rocketOptions = {
    client,
    invisibleDuration: INVISIBLE_MS,
    deadLetterTopic: names.dead,
    deadLetterProducer: producer,
    onError: () => {},
  }
  const consumer =
    o.sqlDatabase === undefined
      ? await consumeRocketMQ<ChaosPayment>({
          ...rocketOptions,
          ...common,
          handler: (payment, ctx) => handler(payment, ctx.attempt),
        })
      : await consumeRocketMQ<ChaosPayment, unknown>({
          ...rocketOptions,
          ...common,
          db: o.sqlDatabase,
          transactionHandler: (tx, payment, ctx) => handler(payment, ctx.attempt, tx),
        })
  return {
    async close() {
      const closing = (async () => {
        await consumer.close()
        await client.shutdown()
        await producer.shutdown()
      })()
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, CLOSE_MS).unref())])
    },
  }
}
