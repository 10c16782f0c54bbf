// MQTT with Idem: a confirming producer and an idempotent subscriber on a persistent MQTT 5
// session. A payment published twice (the producer's retry after a lost PUBACK) is charged once.
// Run it: npx tsx examples/brokers/mqtt.ts (needs an MQTT 5 broker, e.g. Mosquitto, on 127.0.0.1:1883).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { consumeMqtt, mqttProducer, mqttSessionOptions } from 'idem/mqtt'
import { newMessageId } from 'idem/producer'
import { SqliteStore } from 'idem/sqlite'
import mqtt from 'mqtt'

export interface Payment {
  orderId: string
  amountCents: number
}

export interface Names {
  url: string
  /** Stable across restarts: the broker keeps this client's session and what it has not acknowledged. */
  clientId: string
  topic: string
}

export async function payOnce(file: string, names: Names): Promise<{ messageId: string; charged: string[] }> {
  const store = new SqliteStore({ client: file })
  const idem = new Idempotency({ store, scope: 'payments', lease: '30s' })
  const charged: string[] = []

  // The consumer's own client: MQTT 5, clean: false, a session expiry, connected by consumeMqtt.
  const client = mqtt.connect(names.url, mqttSessionOptions({ clientId: names.clientId, sessionExpiry: '1d' }))
  client.on('error', (error) => console.error('mqtt:', error.message))
  // A second client publishes: the producer's messages and the consumer's dead letters.
  const publisher = await mqtt.connectAsync(names.url, { protocolVersion: 5 })

  // Listeners given as `on` are attached before the first delivery: none is missed.
  let settledCount = 0
  let bothSettled!: () => void
  const settled = new Promise<void>((resolve) => {
    bothSettled = resolve
  })
  const consumer = await consumeMqtt<Payment>({
    client,
    topics: names.topic,
    idem,
    handler: async (payment, ctx) => {
      charged.push(payment.orderId) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    // Poison messages go here with the reason in a user property. Something must subscribe to it
    // (MQTT drops messages nobody subscribed to); until then, they wait unacknowledged.
    deadLetter: { topic: `${names.topic}/dead`, client: publisher },
    on: {
      settled: () => {
        if (++settledCount === 2) bothSettled()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes the retry recognisable.
  const producer = mqttProducer({ client: publisher, topic: names.topic, qos: 1 })
  const message = { id: newMessageId(), payload: { orderId: 'order-1', amountCents: 4200 } }
  await producer.publish(message) // resolves on the broker's PUBACK
  await producer.publish(message) // the retry: a second MQTT message, the same idem-key

  await settled
  await consumer.close() // disconnects; the session stays on the broker for the next start
  await publisher.endAsync()
  await store.close()
  return { messageId: message.id, charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = mkdtempSync(join(tmpdir(), 'idem-mqtt-'))
  try {
    const names = { url: 'mqtt://127.0.0.1:1883', clientId: 'idem-example-billing', topic: 'idem-example/payments' }
    console.log(await payOnce(join(dir, 'idem.db'), names))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
