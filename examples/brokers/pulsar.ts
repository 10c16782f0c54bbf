// Apache Pulsar with Idem, over Pulsar's WebSocket API: a producer that always sets the idem-key
// property and waits for the broker's ok, and an idempotent consumer of a Shared subscription. A
// payment published three times with the same id (the retries a lost reply would cause: Pulsar
// stores every copy) is charged once; the two later copies are acknowledged without a charge.
// Run it: npx tsx examples/brokers/pulsar.ts (needs a Pulsar standalone with its web service on
// 127.0.0.1:8088: test/services/pulsar.sh start).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { consumePulsar, pulsarProducer } from 'idem/pulsar'
import { SqliteStore } from 'idem/sqlite'

export interface Payment {
  orderId: string
  amountCents: number
}

export async function payOnce(topic: string, idemFile: string, url = 'ws://127.0.0.1:8088') {
  const store = new SqliteStore({ client: idemFile })
  store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'payments' })
  const charged: string[] = []
  // Listeners given as `on` are attached before the first delivery: none is missed.
  const outcomes: string[] = []
  let allSettled!: () => void
  const settled = new Promise<void>((resolve) => {
    allSettled = resolve
  })
  // The topic and the subscription are created on first use; a new subscription starts at the
  // earliest message, so nothing published before the consumer came is skipped.
  const subscription = await consumePulsar<Payment>({
    url, // the web service (Pulsar's default port is 8080), not the binary protocol's pulsar://…:6650
    topic,
    subscription: 'billing',
    deadLetterTopic: `${topic}-dead`, // failures after maxAttempts land here with their reason
    idem,
    handler: async (payment, ctx) => {
      charged.push(payment.orderId) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    on: {
      settled: (result) => {
        if (outcomes.push(result.outcome) === 3) allSettled()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes a retry
  // recognisable. send() resolves on the broker's ok, with the id of the message it stored.
  const producer = pulsarProducer({ url, topic })
  const payment = { orderId: 'order-1', amountCents: 4200 }
  const first = await producer.send({ payload: payment }) // no id given: one is generated, once
  const message = { id: first.id, payload: payment }
  const receipts = [first, await producer.send(message), await producer.send(message)] // three stored copies

  await settled
  await subscription.close() // lets handlers in flight finish and acknowledges them
  await producer.close()
  await store.close()
  return { messageId: message.id, stored: receipts.map((r) => r.messageId), outcomes, charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const topic = `persistent://public/default/idem-example-payments-${Date.now()}`
  const dir = mkdtempSync(join(tmpdir(), 'idem-pulsar-'))
  try {
    const result = await payOnce(topic, join(dir, 'idem.db'))
    console.log(result)
    if (result.charged.length !== 1) {
      console.error(`FAILED: charged ${result.charged.length} times for one payment`)
      process.exitCode = 1
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
