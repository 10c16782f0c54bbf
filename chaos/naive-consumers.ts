// The control: the same broker, the same acks, the same effect, and no Idem. Every delivery
// charges, so every producer retry and every redelivery after a crash charges again: the run
// fails if this consumer shows no double, since then the faults did not test anything.

import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { connect } from 'nats'
import { mqttNames, natsNames } from './brokers.js'
import { consumeKafkaNaively } from './kafka/naive-consumer.js'
import type { ChaosPayment } from './payment.js'
import { consumeRabbitMqNaively } from './rabbitmq/naive-consumer.js'
import { consumeRocketMQNaively } from './rocketmq/naive-consumer.js'
import type { WorkerConfig } from './worker-config.js'

type Entry = [id: string, fields: string[]]

function payload(fields: readonly string[]): ChaosPayment {
  const i = fields.indexOf('payload')
  return JSON.parse(fields[i + 1] as string) as ChaosPayment
}

export async function consumeNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  switch (config.broker) {
    case 'redis-streams':
      return consumeStreamNaively(config, charge)
    case 'nats':
      return consumeJetStreamNaively(config, charge)
    case 'mqtt':
      return consumeMqttNaively(config, charge)
    case 'rabbitmq':
      return consumeRabbitMqNaively(config, charge)
    case 'kafka':
      return consumeKafkaNaively(config, charge)
    case 'rocketmq':
      return consumeRocketMQNaively(config, charge)
  }
}

/** A persistent session on the shared subscription; the PUBACK goes once the charge is written. */
async function consumeMqttNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const names = mqttNames(config.topic, config.group)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${config.brokerPort}`, {
    protocolVersion: 5,
    clean: false,
    clientId: `${names.topic}-naive-${process.env.CHAOS_WORKER_INDEX ?? '0'}`,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 200,
  })
  client.on('error', () => {})
  // mqtt.js sends the PUBACK when this callback is called.
  client.handleMessage = (packet, done) => {
    const payment = JSON.parse(String(packet.payload)) as ChaosPayment
    charge(payment.paymentId).then(
      () => done(),
      () => {}, // not acknowledged: the broker sends it again on the next connection
    )
  }
  await client.subscribeAsync(names.shared, { qos: 1 })
  return { close: () => client.endAsync() }
}

/** Pull from the durable consumer, charge, ack; JetStream redelivers what was not acked in time. */
async function consumeJetStreamNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const nc = await connect({
    servers: `127.0.0.1:${config.brokerPort}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  })
  const consumer = await nc.jetstream().consumers.get(natsNames(config.topic).stream, config.group)
  let open = true
  let messages: Awaited<ReturnType<typeof consumer.consume>> | undefined
  const loop = (async () => {
    while (open) {
      try {
        messages = await consumer.consume({ max_messages: 16 })
        for await (const m of messages) {
          await charge((m.json() as ChaosPayment).paymentId)
          m.ack()
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  })()
  return {
    async close() {
      open = false
      await messages?.close()
      await loop
      await nc.close()
    },
  }
}

/** XREADGROUP, charge, XACK; and XAUTOCLAIM what a dead member left pending, as any group member must. */
async function consumeStreamNaively(
  config: WorkerConfig,
  charge: (paymentId: string) => Promise<void>,
): Promise<{ close(): Promise<void> }> {
  const options = { port: config.brokerPort, host: '127.0.0.1', connectTimeout: 3000 }
  const reader = new Redis(options)
  const client = new Redis(options)
  reader.on('error', () => {})
  client.on('error', () => {})
  const name = `naive-${process.pid}`
  let open = true
  const handle = async (entries: readonly Entry[]) => {
    for (const [id, fields] of entries) {
      await charge(payload(fields).paymentId)
      await client.xack(config.topic, config.group, id)
    }
  }
  const read = async () => {
    while (open) {
      try {
        const reply = (await reader.xreadgroup(
          'GROUP',
          config.group,
          name,
          'COUNT',
          16,
          'BLOCK',
          1000,
          'STREAMS',
          config.topic,
          '>',
        )) as [string, Entry[]][] | null
        if (reply !== null) await handle(reply[0]?.[1] ?? [])
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }
  const recover = async () => {
    while (open) {
      await new Promise((resolve) => setTimeout(resolve, config.leaseMs / 2))
      try {
        const reply = (await client.xautoclaim(
          config.topic,
          config.group,
          name,
          config.leaseMs,
          '0-0',
          'COUNT',
          16,
        )) as [string, Entry[]]
        await handle(reply[1].filter((entry) => entry !== null))
      } catch {}
    }
  }
  const loops = Promise.all([read(), recover()])
  return {
    async close() {
      open = false
      reader.disconnect()
      await loops
      client.disconnect()
    },
  }
}
