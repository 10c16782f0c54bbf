// The run's side of each broker: create the topic of a combination, publish its payments (directly
// to the private server, never through the proxy: the faults are between the workers and the
// servers), and tell when nothing is left to deliver and how much was dead-lettered.

import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { AckPolicy, connect, headers, type NatsConnection, nanos, StorageType } from 'nats'
import { openKafka } from './kafka/broker.js'
import type { ChaosPayment } from './payment.js'
import { openRabbitMq } from './rabbitmq/broker.js'
import { openRocketMQ } from './rocketmq/broker.js'
import type { BrokerName } from './worker-config.js'
import type { World } from './world.js'

export interface BrokerSide {
  readonly name: BrokerName
  /** The faultable broker: its proxy port goes to the workers. */
  readonly proxyPort: number
  /** Until the broker confirms: a publish that failed (a broker restart) is a producer retry. */
  publish(payment: ChaosPayment): Promise<void>
  /** Messages not yet acknowledged (never delivered, or delivered and not settled). */
  remaining(): Promise<number>
  deadLettered(): Promise<number>
  close(): Promise<void>
}

export interface BrokerTopic {
  topic: string
  group: string
}

async function retrying(publish: () => Promise<unknown>): Promise<void> {
  for (;;) {
    try {
      await publish()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

export async function openBroker(name: BrokerName, world: World, t: BrokerTopic, leaseMs: number): Promise<BrokerSide> {
  switch (name) {
    case 'redis-streams':
      return openRedisStreams(world, t)
    case 'nats':
      return openNats(world, t, leaseMs)
    case 'mqtt':
      return openMqtt(world, t)
    case 'rabbitmq':
      return openRabbitMq(world, t)
    case 'kafka':
      return openKafka(world, t)
    case 'rocketmq':
      return openRocketMQ(world, t)
  }
}

/** MQTT topics: the topic with its dots and colons made slashes-free underscores. */
export function mqttNames(topic: string, group: string): { topic: string; shared: string; dead: string } {
  const base = `chaos/${topic.replace(/[^A-Za-z0-9_-]/g, '_')}`
  // A shared subscription: the workers share the messages, as the members of a consumer group.
  return { topic: base, shared: `$share/${group}/${base}`, dead: `${base}/dead` }
}

async function openMqtt(world: World, { topic, group }: BrokerTopic): Promise<BrokerSide> {
  const broker = await world.get('mosquitto')
  const url = `mqtt://127.0.0.1:${broker.server.port}`
  const names = mqttNames(topic, group)
  const publisher = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200 })
  publisher.on('error', () => {})
  // The dead letters are counted by a subscriber of their own (MQTT drops what nobody subscribed to).
  let dead = 0
  const collector = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 200,
    clientId: `${names.topic}-dead`,
    clean: false,
  })
  collector.on('error', () => {})
  collector.on('message', () => dead++)
  await collector.subscribeAsync(names.dead, { qos: 1 })
  return {
    name: 'mqtt',
    proxyPort: broker.proxy.port,
    publish: (p) =>
      retrying(() =>
        publisher.publishAsync(names.topic, JSON.stringify(p), {
          qos: 1,
          properties: { userProperties: { 'idem-key': p.messageId } },
        }),
      ),
    // MQTT has no count of what a shared subscription has left: the drain waits for the ledger alone.
    remaining: async () => 0,
    deadLettered: async () => dead,
    async close() {
      await publisher.endAsync()
      await collector.endAsync()
    },
  }
}

async function openRedisStreams(world: World, { topic, group }: BrokerTopic): Promise<BrokerSide> {
  const broker = await world.get('brokerRedis')
  const redis = new Redis({ port: broker.server.port, host: '127.0.0.1' })
  redis.on('error', () => {})
  await redis.xgroup('CREATE', topic, group, '0', 'MKSTREAM')
  return {
    name: 'redis-streams',
    proxyPort: broker.proxy.port,
    publish: (p) => retrying(() => redis.xadd(topic, '*', 'id', p.messageId, 'payload', JSON.stringify(p))),
    async remaining() {
      try {
        const groups = (await redis.xinfo('GROUPS', topic)) as unknown[][]
        for (const g of groups) {
          const info = new Map<string, unknown>()
          for (let i = 0; i < g.length; i += 2) info.set(String(g[i]), g[i + 1])
          // Entries never read (lag) and entries read but not acked (pending) both remain.
          if (info.get('name') === group) return Number(info.get('pending') ?? 0) + Number(info.get('lag') ?? 0)
        }
      } catch {}
      return Number.POSITIVE_INFINITY
    },
    deadLettered: () => redis.xlen(`${topic}:dead`),
    async close() {
      redis.disconnect()
    },
  }
}

/** JetStream names: the topic with its dots and colons made underscores. */
export function natsNames(topic: string): { stream: string; subject: string; dead: string } {
  const base = topic.replace(/[^A-Za-z0-9_-]/g, '_')
  return { stream: base, subject: `${base}.payments`, dead: `${base}.dead` }
}

async function openNats(world: World, { topic, group }: BrokerTopic, leaseMs: number): Promise<BrokerSide> {
  const broker = await world.get('nats')
  const nc: NatsConnection = await connect({
    servers: `127.0.0.1:${broker.server.port}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  })
  const names = natsNames(topic)
  const jsm = await nc.jetstreamManager()
  // A duplicate window shorter than the producer's retry delay: the retry is stored again, as after
  // a window that passed, so that deduplication is left to the consumer (the control must see it).
  await jsm.streams.add({
    name: names.stream,
    subjects: [names.subject],
    storage: StorageType.File,
    duplicate_window: nanos(100),
  })
  await jsm.streams.add({ name: `${names.stream}_DEAD`, subjects: [names.dead], storage: StorageType.File })
  await jsm.consumers.add(names.stream, {
    durable_name: group,
    ack_policy: AckPolicy.Explicit,
    // The broker's redelivery timer matches the lease: a dead worker's messages come back about
    // when its claims lapse (a live handler's timer is renewed by working()).
    ack_wait: nanos(leaseMs),
    max_deliver: -1,
  })
  const js = nc.jetstream()
  return {
    name: 'nats',
    proxyPort: broker.proxy.port,
    publish: (p) =>
      retrying(async () => {
        const h = headers()
        h.set('Nats-Msg-Id', p.messageId)
        await js.publish(names.subject, JSON.stringify(p), { headers: h, timeout: 2000 })
      }),
    async remaining() {
      try {
        const info = await jsm.consumers.info(names.stream, group)
        return info.num_pending + info.num_ack_pending
      } catch {
        return Number.POSITIVE_INFINITY
      }
    },
    async deadLettered() {
      const info = await jsm.streams.info(`${names.stream}_DEAD`)
      return info.state.messages
    },
    async close() {
      await nc.close()
    },
  }
}
