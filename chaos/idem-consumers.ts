// The consumer behind Idem, per broker: run() mode charges in the ledger, transaction mode charges
// in the store's own database, in the transaction that also writes the record.

import { appendFileSync } from 'node:fs'
import type { Idempotency } from 'idem'
import type { ConsumerListeners } from 'idem/consumer'
import { consumeMqtt, mqttSessionOptions } from 'idem/mqtt'
import { consumeJetStream } from 'idem/nats'
import { consumeRedisStream } from 'idem/redis-streams'
import type { SqlDatabase } from 'idem/sql'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { connect } from 'nats'
import { modeOptions } from './broker-consumer.js'
import { mqttNames, natsNames } from './brokers.js'
import { consumeKafkaWithIdem } from './kafka/idem-consumer.js'
import type { ChaosPayment } from './payment.js'
import { consumeRabbitMqWithIdem } from './rabbitmq/idem-consumer.js'
import { consumeRocketMQWithIdem } from './rocketmq/idem-consumer.js'
import type { WorkerConfig, WorkerCounters } from './worker-config.js'

export interface IdemConsumerOptions {
  config: WorkerConfig
  idem: Idempotency
  /** Transaction mode when given. */
  sqlDatabase: SqlDatabase<unknown> | undefined
  /** The effect: `tx` is the open transaction in transaction mode, undefined in run() mode. */
  charge(tx: unknown, paymentId: string, attempt: number): Promise<void>
  counters: WorkerCounters
}

export async function consumeWithIdem(o: IdemConsumerOptions): Promise<{ close(): Promise<void> }> {
  const { config, counters } = o
  // CHAOS_TRACE: a file that gets each delivery's key, to tell a message the broker never delivered
  // from one a consumer received and dropped.
  const trace = process.env.CHAOS_TRACE
  const on: ConsumerListeners = {
    received: (r) => {
      if (trace !== undefined) appendFileSync(trace, `received ${r.key}\n`)
    },
    settled: (r) => {
      if (trace !== undefined) appendFileSync(trace, `${r.outcome} ${r.key}\n`)
      if (r.outcome === 'executed') counters.executed++
      else if (r.outcome === 'replayed') counters.replayed++
      else if (r.outcome === 'retried') counters.retried++
      else counters.deadLettered++
    },
  }
  const common = {
    idem: o.idem,
    lease: config.leaseMs,
    concurrency: config.concurrency,
    // Faults make failures routine; retry soon, and dead-letter only what fails this often.
    backoff: () => 300,
    maxAttempts: 50,
    shutdownTimeout: '5s',
    on,
  }
  const handler = (payment: ChaosPayment, attempt: number, tx?: unknown) => o.charge(tx, payment.paymentId, attempt)
  const mode = modeOptions({ sqlDatabase: o.sqlDatabase, handler })
  switch (config.broker) {
    case 'kafka':
      return consumeKafkaWithIdem({ config, common, sqlDatabase: o.sqlDatabase, handler })
    case 'rocketmq':
      return consumeRocketMQWithIdem({ config, common, sqlDatabase: o.sqlDatabase, handler })
    case 'rabbitmq':
      return consumeRabbitMqWithIdem({ config, common, sqlDatabase: o.sqlDatabase, handler })
    case 'redis-streams': {
      const client = new Redis({ port: config.brokerPort, host: '127.0.0.1', connectTimeout: 3000 })
      client.on('error', () => {})
      const streamOptions = {
        client,
        stream: config.topic,
        group: config.group,
        block: '1s',
        count: 16,
        onError: () => {},
      }
      const consumer = await consumeRedisStream<ChaosPayment, unknown>({
        ...streamOptions,
        ...common,
        ...mode,
      })
      return {
        async close() {
          await consumer.close()
          client.disconnect()
        },
      }
    }
    case 'nats': {
      const nc = await connect({
        servers: `127.0.0.1:${config.brokerPort}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 200,
        timeout: 3000,
      })
      const names = natsNames(config.topic)
      const natsOptions = {
        client: nc,
        stream: names.stream,
        durable: config.group,
        deadLetterSubject: names.dead,
        onError: () => {},
      }
      const consumer = await consumeJetStream<ChaosPayment, unknown>({ ...natsOptions, ...common, ...mode })
      return {
        async close() {
          await consumer.close()
          await nc.close()
        },
      }
    }
    case 'mqtt': {
      const url = `mqtt://127.0.0.1:${config.brokerPort}`
      const names = mqttNames(config.topic, config.group)
      // A stable client id per worker slot: a restarted worker resumes its session and gets back
      // what its predecessor had not acknowledged.
      const clientId = `${names.topic}-${process.env.CHAOS_WORKER_INDEX ?? '0'}`
      const client = mqtt.connect(url, mqttSessionOptions({ clientId, sessionExpiry: '1h', reconnectPeriod: 200 }))
      client.on('error', () => {})
      const deadLetters = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200 })
      deadLetters.on('error', () => {})
      const mqttOptions = {
        client,
        topics: names.shared,
        deadLetter: { topic: names.dead, client: deadLetters },
        connectTimeout: '5s',
      }
      const consumer = await consumeMqtt<ChaosPayment, unknown>({ ...mqttOptions, ...common, ...mode })
      return {
        async close() {
          await consumer.close()
          await deadLetters.endAsync()
        },
      }
    }
  }
}
