// RabbitMQ with Idem: a producer that waits for publisher confirms and an idempotent consumer on a
// quorum queue. A payment published twice (the producer's retry after a lost confirm) is charged once.
// Run it: npx tsx examples/brokers/amqp.ts (needs RabbitMQ on 127.0.0.1:5672).

import { fileURLToPath } from 'node:url'
import amqp from 'amqplib'
import { Idempotency, MemoryStore } from 'idem'
import { amqpProducer, consumeAmqp } from 'idem/amqp'
import { newMessageId } from 'idem/producer'

export interface Payment {
  orderId: string
  amountCents: number
}

export async function payOnce(url: string, queue = 'payments'): Promise<{ messageId: string; charged: string[] }> {
  // A recovering connection: after a connection loss, idem/amqp reopens its channels on the new one.
  const connection = await amqp.connect(url, { recovery: true })
  connection.on('error', (error: Error) => console.warn(`RabbitMQ: ${error.message} (reconnecting)`))
  const setup = await connection.createChannel()
  // Quorum queues count redeliveries exactly (x-delivery-count), which maxAttempts relies on.
  await setup.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  await setup.close()

  const idem = new Idempotency({ store: new MemoryStore(), scope: 'payments' }) // use a shared store in production
  const charged: string[] = []
  // Listeners given as `on` are attached before the first delivery: none is missed.
  let settled = 0
  let settle!: () => void
  const bothSettled = new Promise<void>((resolve) => {
    settle = resolve
  })
  const subscription = await consumeAmqp<Payment>({
    client: connection,
    queue,
    prefetch: 16,
    consumerTimeout: '30m', // the broker's consumer_timeout: a message is handed back before it
    idem,
    maxAttempts: 5, // then to `${queue}.idem.dlq`, the reason in x-idem-dead-letter-reason
    handler: async (payment, ctx) => {
      charged.push(payment.orderId) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    on: {
      settled: () => {
        if (++settled === 2) settle()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes the retry recognisable.
  const producer = amqpProducer({ client: connection, routingKey: queue })
  const message = { id: newMessageId(), payload: { orderId: 'order-1', amountCents: 4200 } }
  await producer.publish(message) // resolves once RabbitMQ confirmed it (persistent, mandatory)
  await producer.publish(message) // the retry after a lost confirm: a second copy, the same messageId

  await bothSettled
  await subscription.close()
  await producer.close()
  await connection.close()
  return { messageId: message.id, charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await payOnce(process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'))
}
