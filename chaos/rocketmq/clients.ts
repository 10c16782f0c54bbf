// What the RocketMQ sides of the run share: the names of a combination, and the client settings.

import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'

/**
 * RocketMQ names allow letters, digits, '_', '-', '%' and '|': the run's topic with the rest made
 * underscores. The group is the combination's own: a group keeps its subscriptions on the broker,
 * and combinations run one after another.
 */
export function rocketmqNames(topic: string): { topic: string; dead: string; group: string } {
  const base = topic.replace(/[^A-Za-z0-9_-]/g, '_')
  return { topic: base, dead: `${base}_dead`, group: `${base}_group` }
}

/**
 * How long a received message stays invisible before RocketMQ delivers it again: the proxy's
 * minimum for a receive, 10 s, five leases (a lease of 2 s is below what RocketMQ accepts). A killed
 * or frozen worker's messages come back after it; the adapter renews it every third while a
 * handler runs.
 */
export const INVISIBLE_MS = 10_000

/** Without a logger the client writes ~/logs/rocketmq through egg-logger; the run needs none. */
export const silentLogger = { info() {}, debug() {}, warn() {}, error() {} }

export async function startConsumer(o: { endpoint: string; group: string; topic: string }): Promise<SimpleConsumer> {
  const consumer = new SimpleConsumer({
    endpoints: o.endpoint,
    namespace: '',
    logger: silentLogger,
    consumerGroup: o.group,
    subscriptions: new Map([[o.topic, '*']]),
    // The long poll of each receive: the proxy refuses less than about 3 s.
    awaitDuration: 3000,
    requestTimeout: 5000,
  })
  await consumer.startup()
  return consumer
}

export async function startProducer(o: { endpoint: string; topic: string }): Promise<Producer> {
  const producer = new Producer({
    endpoints: o.endpoint,
    namespace: '',
    logger: silentLogger,
    topics: [o.topic],
    requestTimeout: 5000,
  })
  await producer.startup()
  return producer
}
