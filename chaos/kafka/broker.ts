// The run's side of Kafka: the topic of a combination (and its dead-letter topic), the payments
// published straight to the broker's direct listener with acks from every in-sync replica, and
// what is left: per partition, the end offset less the group's committed offset.

import { Admin, Consumer, Producer } from '@platformatic/kafka'
import { MESSAGE_ID_HEADER } from 'idem/kafka'
import type { BrokerSide, BrokerTopic } from '../brokers.js'
import type { World } from '../world.js'
import { KAFKA_PARTITIONS, kafkaNames } from './members.js'
import { KAFKA_DIRECT } from './server.js'

export async function openKafka(world: World, { topic, group }: BrokerTopic): Promise<BrokerSide> {
  const broker = await world.get('kafka')
  const names = kafkaNames(topic)
  const bootstrapBrokers = [KAFKA_DIRECT]
  const admin = new Admin({ clientId: 'chaos-admin', bootstrapBrokers })
  try {
    await admin.createTopics({ topics: [names.topic], partitions: KAFKA_PARTITIONS, replicas: 1 })
    await admin.createTopics({ topics: [names.dead], partitions: 1, replicas: 1 })
  } finally {
    await admin.close()
  }
  // Not idempotent: a send the client retries after a lost acknowledgement may be written twice,
  // which is a producer retry like the run's own, for the consumer to deduplicate.
  const producer = new Producer({
    clientId: 'chaos-producer',
    bootstrapBrokers,
    connectTimeout: 3000,
    requestTimeout: 5000,
    retries: 3,
    retryDelay: 250,
  })
  // A client of the workers' group that never joins it: it only reads the group's committed offsets.
  const offsets = new Consumer({ clientId: 'chaos-offsets', groupId: group, bootstrapBrokers, requestTimeout: 5000 })
  const partitions = Array.from({ length: KAFKA_PARTITIONS }, (_, i) => i)
  const sum = (values: readonly bigint[]) => values.reduce((total, value) => total + value, 0n)
  return {
    name: 'kafka',
    proxyPort: broker.proxy.port,
    async publish(p) {
      for (;;) {
        try {
          await producer.send({
            messages: [
              {
                topic: names.topic,
                key: Buffer.from(p.paymentId),
                value: Buffer.from(JSON.stringify(p)),
                headers: new Map([[Buffer.from(MESSAGE_ID_HEADER), Buffer.from(p.messageId)]]),
              },
            ],
            acks: -1,
          })
          return
        } catch {
          // Not confirmed (the broker restarting): send again, as a producer retries.
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    },
    async remaining() {
      try {
        const [ends, committed] = await Promise.all([
          offsets.listOffsets({ topics: [names.topic] }),
          offsets.listCommittedOffsets({ topics: [{ topic: names.topic, partitions }] }),
        ])
        const end = ends.get(names.topic) ?? []
        const done = committed.get(names.topic) ?? []
        // A partition the group never committed (-1) has everything left (topics start at 0).
        return Number(sum(partitions.map((p) => (end[p] ?? 0n) - ((done[p] ?? -1n) < 0n ? 0n : (done[p] as bigint)))))
      } catch {
        return Number.POSITIVE_INFINITY
      }
    },
    async deadLettered() {
      const ends = await offsets.listOffsets({ topics: [names.dead] })
      return Number(sum(ends.get(names.dead) ?? []))
    },
    async close() {
      await producer.close()
      await offsets.close()
    },
  }
}
