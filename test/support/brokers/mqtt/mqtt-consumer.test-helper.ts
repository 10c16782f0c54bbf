// A consumeMqtt on the local Mosquitto for one test: its own client id, topic and dead-letter
// recorder, a producer, and every event of the core recorded in order.

import mqtt from 'mqtt'
import type { MqttPublishPacket } from '../../../../src/brokers/mqtt/mqtt-client.js'
import { consumeMqtt } from '../../../../src/brokers/mqtt/mqtt-consumer.js'
import { mqttProducer } from '../../../../src/brokers/mqtt/mqtt-producer.js'
import { IdempotentConsumer } from '../../../../src/consumer/consumer.js'
import type { RunConsumerOptions } from '../../../../src/consumer/types.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js'
import { MOSQUITTO_PORT, mqttUrl, plainClient, type Recorder, record, sessionClient } from './mqtt.test-helper.js'

export interface Order {
  n: number
}

export interface Started {
  clientId: string
  topic: string
  client: ReturnType<typeof sessionClient>
  close(): Promise<void>
  publish(id: string, n?: number): Promise<void>
  /** The dead-letter topic's messages (none recorded with `deadLetterSubscriber: false`). */
  deadLetters: Recorder
  settled: { key: string; outcome: string; reason?: string }[]
  brokerErrors: { key: string; operation: string }[]
  received: { key: string; deliveryCount: number }[]
  /** How often the consumer's connection closed. */
  closes(): number
}

export interface StartOptions {
  qos?: 1 | 2
  keepalive?: number
  /** Subscribe a recorder to the dead-letter topic first. Default true. */
  deadLetterSubscriber?: boolean
  store?: MemoryStore
}

export async function startConsumer(
  prefix: string,
  name: string,
  options: Omit<RunConsumerOptions<Order>, 'idem'>,
  start: StartOptions = {},
): Promise<Started> {
  const clientId = `${prefix}-${name}`
  const topic = `${prefix}/${name}`
  const deadLetterTopic = `${topic}/dead`
  const deadLetters = start.deadLetterSubscriber === false ? notRecording : await record(deadLetterTopic)
  const client = sessionClient(clientId, MOSQUITTO_PORT, start.keepalive)
  let closes = 0
  client.on('close', () => closes++)
  const idem = new Idempotency({ store: start.store ?? new MemoryStore() })
  // Listeners first: a resumed session's messages are handled as soon as the client connects.
  const consumer = new IdempotentConsumer<Order>({ idem, backoff: () => 20, ...options })
  const producer = mqttProducer({ client: await plainClient(), topic, qos: start.qos ?? 1 })
  const started: Started = {
    clientId,
    topic,
    client,
    close: () => Promise.resolve(),
    publish: (id, n = 1) => producer.publish({ id, payload: { n } }),
    deadLetters,
    settled: [],
    brokerErrors: [],
    received: [],
    closes: () => closes,
  }
  consumer.on('settled', ({ key, outcome, reason }) => started.settled.push({ key, outcome, reason }))
  consumer.on('broker_error', ({ key, operation }) => started.brokerErrors.push({ key, operation }))
  consumer.on('received', (event) => started.received.push(event))
  const handle = await consumeMqtt<Order>({
    client,
    topics: topic,
    qos: start.qos ?? 1,
    consumer,
    deadLetter: { topic: deadLetterTopic, client: await plainClient() },
  })
  started.close = () => handle.close()
  return started
}

const notRecording: Recorder = {
  messages: [],
  waitFor: () => Promise.reject(new Error('this consumer was started without a dead-letter subscriber')),
}

export const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

/** Resume `clientId`'s session with a plain auto-acknowledging client and return the first message it is sent. */
export async function firstMessageOfSession(clientId: string): Promise<MqttPublishPacket> {
  const client = mqtt.connect(mqttUrl(), {
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
    reconnectPeriod: 0,
  })
  client.on('error', () => {})
  try {
    return await new Promise<MqttPublishPacket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message in the session')), 15_000)
      client.on('message', (_topic, _payload, packet) => {
        clearTimeout(timer)
        resolve(packet as unknown as MqttPublishPacket)
      })
    })
  } finally {
    await client.endAsync()
  }
}
