// The run's side of RocketMQ: the topics of a combination (created with mqadmin), the payments
// sent straight to the gRPC endpoint (a send resolves once the broker stored the message), and
// the dead letters, counted by a consumer of the dead-letter topic started before any worker.

import { KEY_PROPERTY } from 'idem/rocketmq'
import type { BrokerSide, BrokerTopic } from '../brokers.js'
import type { World } from '../world.js'
import { rocketmqNames, startConsumer, startProducer } from './clients.js'
import { type PrivateRocketMQ, ROCKETMQ_DIRECT } from './server.js'

export async function openRocketMQ(world: World, { topic }: BrokerTopic): Promise<BrokerSide> {
  const broker = await world.get('rocketmq')
  const names = rocketmqNames(topic)
  await (broker.server as PrivateRocketMQ).createTopics([names.topic, names.dead])
  const producer = await startProducer({ endpoint: ROCKETMQ_DIRECT, topic: names.topic })
  const collector = await startConsumer({ endpoint: ROCKETMQ_DIRECT, group: `${names.dead}_count`, topic: names.dead })
  let dead = 0
  let open = true
  const collecting = (async () => {
    while (open) {
      try {
        for (const message of await collector.receive(16, 10_000)) {
          await collector.ack(message)
          dead++
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  })()
  return {
    name: 'rocketmq',
    proxyPort: broker.proxy.port,
    async publish(p) {
      for (;;) {
        try {
          await producer.send({
            topic: names.topic,
            body: Buffer.from(JSON.stringify(p)),
            keys: [p.paymentId],
            properties: new Map([[KEY_PROPERTY, p.messageId]]),
          })
          return
        } catch {
          // Not confirmed (the broker restarting): send again, as a producer retries.
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    },
    // The gRPC proxy has no call for a group's backlog (mqadmin consumerProgress would start a JVM
    // per poll): as on MQTT, the drain waits for the ledger alone.
    remaining: async () => 0,
    deadLettered: async () => dead,
    async close() {
      open = false
      await Promise.race([collecting, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      await producer.shutdown().catch(() => {})
      await collector.shutdown().catch(() => {})
    },
  }
}
