// Kafka with Idem: an idempotent producer that puts a stable message id in a header, and a consumer
// group member that commits only offsets whose outcome is stored. A payment published twice (the
// producer's retry after a lost acknowledgement) is charged once.
// Run it: npx tsx examples/brokers/kafka.ts (needs Kafka on 127.0.0.1:9092: test/services/kafka.sh start).

import { fileURLToPath } from 'node:url'
import { Admin, Consumer, Producer } from '@platformatic/kafka'
import { Idempotency, MemoryStore } from 'idem'
import { consumeKafka, kafkaProducer } from 'idem/kafka'
import { newMessageId } from 'idem/producer'

export interface Payment {
  account: string
  amountCents: number
}

export async function payOnce(
  brokers = ['127.0.0.1:9092'],
  topic = `payments-${Date.now()}`,
): Promise<{ messageId: string; charged: string[] }> {
  const admin = new Admin({ clientId: 'example-admin', bootstrapBrokers: brokers })
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 })
  await admin.close()

  // Your clients: Idem never closes them. The producer is idempotent (enable.idempotence), so the
  // broker itself drops a batch the client resends; Idem's id header covers a whole new publish.
  const producerClient = new Producer({ clientId: 'checkout', bootstrapBrokers: brokers, idempotent: true })
  const consumerClient = new Consumer({ clientId: 'billing', groupId: `billing-${topic}`, bootstrapBrokers: brokers })

  const idem = new Idempotency({ store: new MemoryStore(), scope: 'payments' })
  const charged: string[] = []
  let settledCount = 0
  let bothSettled!: () => void
  const settled = new Promise<void>((resolve) => {
    bothSettled = resolve
  })

  // A member of the group: a partition's records in offset order, partitions in parallel, one claim
  // per fetched batch; an offset is committed only once it and every offset before it are done.
  const consumer = await consumeKafka<Payment>({
    client: consumerClient,
    producer: producerClient, // writes poison records to `${topic}.dead-letter`
    topics: [topic],
    idem,
    handler: async (payment, ctx) => {
      charged.push(payment.account) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    on: {
      settled: () => {
        if (++settledCount === 2) bothSettled()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes the retry recognisable.
  const payments = kafkaProducer({ client: producerClient, topic, recordKey: (m) => (m.payload as Payment).account })
  const message = { id: newMessageId(), payload: { account: 'acct-1', amountCents: 4200 } }
  await payments.publish(message)
  await payments.publish(message) // the retry: a second record, the same id header

  await settled
  await consumer.close()
  await consumerClient.close()
  await producerClient.close()
  return { messageId: message.id, charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await payOnce())
}
