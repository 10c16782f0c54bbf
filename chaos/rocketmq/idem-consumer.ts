// A worker's consumer behind Idem on RocketMQ: consumeRocketMQ over a SimpleConsumer of the
// combination's group, through the proxy, with a dead-letter producer of its own.

import { consumeRocketMQ } from 'idem/rocketmq'
import { type BrokerConsumerOptions, closeWithin, modeOptions } from '../broker-consumer.js'
import type { ChaosPayment } from '../payment.js'
import { INVISIBLE_MS, rocketmqNames, startConsumer, startProducer } from './clients.js'

export async function consumeRocketMQWithIdem(o: BrokerConsumerOptions): Promise<{ close(): Promise<void> }> {
  const { config, common } = o
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
  const consumer = await consumeRocketMQ<ChaosPayment, unknown>({ ...rocketOptions, ...common, ...modeOptions(o) })
  return {
    async close() {
      await closeWithin(async () => {
        await consumer.close()
        await client.shutdown()
        await producer.shutdown()
      })
    },
  }
}
