// The worker behind Idem on RabbitMQ: consumeAmqp on the combination's quorum queue, in run() mode
// or in transaction mode, with the consumer core's options every broker of the run shares.

import { consumeAmqp } from 'idem/amqp'
import { type BrokerConsumerOptions, modeOptions } from '../broker-consumer.js'
import type { ChaosPayment } from '../payment.js'
import { connectThroughProxy, prefetchOf } from './worker-connection.js'

export async function consumeRabbitMqWithIdem(o: BrokerConsumerOptions): Promise<{ close(): Promise<void> }> {
  const connection = await connectThroughProxy(o.config)
  // Idem's dead-letter queue and delay queues are declared by consumeAmqp (assertTopology).
  const source = { client: connection, queue: o.config.topic, prefetch: prefetchOf(o.config), onError: () => {} }
  try {
    const consumer = await consumeAmqp<ChaosPayment, unknown>({ ...source, ...o.common, ...modeOptions(o) })
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
