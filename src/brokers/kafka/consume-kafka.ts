// consumeKafka: a consumer group member that feeds the Idem consumer core (the member at work is
// kafka-worker.ts): its options, its handle, and their checks.

import { type ConsumerHandle, type ConsumerSource, consumerHandle, resolveConsumer } from '../../consumer/handle.js'
import { KafkaDeadLetters } from './kafka-dead-letter.js'
import { type KafkaOptions, resolveKafkaOptions } from './kafka-options.js'
import { type KafkaConsumerStats, KafkaWorker } from './kafka-worker.js'

/**
 * consumeKafka's options: the Kafka ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `maxAttempts`, `on`, …),
 * or a ready-made `consumer`.
 */
export type ConsumeKafkaOptions<P = unknown, Tx = unknown> = KafkaOptions<P> & ConsumerSource<P, Tx>

/** What consumeKafka resolves to: the common handle, with Kafka's counters. */
export type KafkaHandle<P = unknown, Tx = unknown> = ConsumerHandle<P, Tx, KafkaConsumerStats>

/**
 * Consume `topics` as a member of the client's consumer group and hand each record to the
 * idempotent consumer: per record, claim, run the handler, store the outcome, and only then count
 * its offset as done. The group's offset moves only past records whose outcome is durable.
 *
 * @example
 * ```ts
 * import { Consumer, Producer } from '@platformatic/kafka'
 * import { consumeKafka } from 'idem/kafka'
 *
 * const brokers = ['127.0.0.1:9092']
 * const client = new Consumer({ clientId: 'billing', groupId: 'billing', bootstrapBrokers: brokers })
 * const producer = new Producer({ clientId: 'billing-dead-letters', bootstrapBrokers: brokers })
 * const payments = await consumeKafka<Payment>({
 *   client,
 *   producer,
 *   topics: ['payments'],
 *   idem,
 *   handler: (payment, ctx) => extendSubscription(payment, ctx.key),
 * })
 * // on shutdown:
 * await payments.close()
 * await client.close()
 * await producer.close()
 * ```
 */
export async function consumeKafka<P = unknown, Tx = unknown>(
  options: ConsumeKafkaOptions<P, Tx>,
): Promise<KafkaHandle<P, Tx>> {
  if (options?.client === undefined || typeof options.client?.consume !== 'function') {
    throw new TypeError('consumeKafka needs client: a @platformatic/kafka Consumer (with the groupId to join)')
  }
  if (options.producer === undefined || typeof options.producer?.send !== 'function') {
    throw new TypeError('consumeKafka needs producer: a @platformatic/kafka Producer, for the dead-letter topic')
  }
  const resolved = resolveKafkaOptions(options)
  const { core } = resolveConsumer(options, 'consumeKafka')
  const stats: KafkaConsumerStats = { rejected: 0, commits: 0, revoked: 0, restarts: 0 }
  const deadLetters = new KafkaDeadLetters(options.producer, resolved.deadLetterTopic)
  const worker = new KafkaWorker(core, options.client, deadLetters, resolved, stats)
  try {
    await worker.start()
  } catch (error) {
    await worker.close()
    throw error
  }
  return consumerHandle(core, stats, { close: () => worker.close(), done: worker.done }, { lag: () => worker.lag() })
}
