// Time-window dedup for telemetry: a device re-sends readings (an MQTT QoS 1 publisher retrying
// after a lost PUBACK), and the consumer drops a repeat seen within 10 minutes before it reaches
// the record store, on a window shared by every consumer through Redis. Records are kept only a
// minute: long enough for a broker redelivery, not a day per reading.
// Run it: npx tsx examples/window.ts (needs Mosquitto on 127.0.0.1:1883 and Redis on 127.0.0.1:6379).

import { fileURLToPath } from 'node:url'
import { Idempotency, MemoryStore } from 'idem'
import { consumeMqtt, mqttProducer, mqttSessionOptions } from 'idem/mqtt'
import { DedupWindow, redisWindow } from 'idem/window'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'

export interface Reading {
  device: string
  celsius: number
}

export async function collect(names: { url: string; clientId: string; topic: string; prefix: string }) {
  const redis = new Redis({ maxRetriesPerRequest: 2 }) // give up while Redis is down: the core retries
  const window = new DedupWindow({ store: redisWindow({ client: redis, prefix: names.prefix }), window: '10m' })
  const idem = new Idempotency({ store: new MemoryStore(), scope: 'telemetry' })
  const stored: string[] = []
  const outcomes: string[] = []
  let settled!: () => void
  const allSettled = new Promise<void>((resolve) => {
    settled = resolve
  })

  // A persistent session: what the consumer has not acknowledged survives its restart.
  const client = mqtt.connect(names.url, mqttSessionOptions({ clientId: names.clientId, sessionExpiry: '1d' }))
  const publisher = await mqtt.connectAsync(names.url, { protocolVersion: 5 })
  const consumer = await consumeMqtt<Reading>({
    client,
    topics: names.topic,
    qos: 1,
    deadLetter: { topic: `${names.topic}/dead`, client: publisher },
    idem,
    ttl: '1m',
    window, // asked before the claim: a repeat within 10 minutes is acked unrun
    windowSource: (delivery) => delivery.payload.device, // ids are unique per device
    handler: (reading, ctx) => {
      stored.push(`${reading.device}/${ctx.key}: ${reading.celsius}`) // your write
    },
    on: {
      settled: (result) => {
        outcomes.push(`${result.key}: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}`)
        if (outcomes.length === 3) settled()
      },
    },
  })

  const producer = mqttProducer({ client: publisher, topic: names.topic, qos: 1 })
  const reading = { id: 'r-1001', payload: { device: 'sensor-7', celsius: 21.5 } }
  await producer.publish(reading)
  await producer.publish(reading) // the device's retry: same id, within the window
  await producer.publish({ id: 'r-1002', payload: { device: 'sensor-7', celsius: 21.6 } })

  await allSettled
  await consumer.close()
  await publisher.endAsync()
  redis.disconnect()
  return { stored, outcomes }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = {
    url: 'mqtt://127.0.0.1:1883',
    clientId: 'idem-example-telemetry',
    topic: 'idem-example/telemetry',
    prefix: `idem:example:window:${Date.now()}:`,
  }
  console.log(await collect(names))
}
