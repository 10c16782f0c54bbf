// MQTT consumer throughput: messages/s drained from a persistent session on Mosquitto by one
// subscriber, without Idem (a no-op handler, then the PUBACK) and through consumeMqtt with Idem on a
// RedisStore and on a SqliteStore, all on the same broker. MQTT delivers no batches, so there is no
// batch variant. Called by bench/consumers.ts; alone: npx tsx bench/consumers/mqtt.ts [--quick]
//
// Each variant drains chunks of CHUNK messages published (untimed) into its offline session:
// Mosquitto keeps at most max_queued_messages (default 1000) per offline session and drops the rest.
// The clock runs from the first message received to the last settled, per chunk.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { consumeMqtt } from '../../src/brokers/mqtt/index.js'
import { mqttSessionOptions } from '../../src/brokers/mqtt/session-options.js'
import { IdempotentConsumer } from '../../src/consumer/consumer.js'
import type { IdempotencyStore } from '../../src/contract/types.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js'
import { deleteKeys, printRows, type Row } from './shared.js'

export type { Row }

type Variant = 'raw' | 'idem-redis' | 'idem-sqlite'

const MQTT_URL = process.env.IDEM_MQTT_URL ?? 'mqtt://127.0.0.1:1883'
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const CHUNK = Number(process.env.IDEM_BENCH_MQTT_CHUNK ?? 900)
const CHUNK_TIMEOUT_MS = 60_000

export async function benchMqtt(opts: { messages: number; quick: boolean }): Promise<Row[]> {
  const run = `idem_bench_mqtt_${process.pid}_${Date.now().toString(36)}`
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-mqtt-'))
  const variants: Variant[] = ['raw', 'idem-redis', 'idem-sqlite']
  const redis = new Redis(REDIS_URL)
  const publisher = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5 })
  const stores = new Map<Variant, IdempotencyStore>([
    ['idem-redis', new RedisStore({ client: redis, prefix: `${run}:` })],
    ['idem-sqlite', new SqliteStore({ client: join(dir, 'bench.db') })],
  ])
  const elapsed = new Map<Variant, number>(variants.map((v) => [v, 0]))
  const drained = new Map<Variant, number>(variants.map((v) => [v, 0]))
  try {
    for (const variant of variants) await createSession(`${run}-${variant}`, `${run}/${variant}`)
    // Chunks interleaved across variants, so that a noisy moment on the shared machine hits them alike.
    for (let done = 0; done < opts.messages; done += CHUNK) {
      const n = Math.min(CHUNK, opts.messages - done)
      for (const variant of variants) {
        const topic = `${run}/${variant}`
        await fill(publisher, topic, n, `${run}-${variant}-${done}`)
        const ms = await drainChunk(variant, `${run}-${variant}`, topic, n, stores.get(variant))
        elapsed.set(variant, (elapsed.get(variant) ?? 0) + ms)
        drained.set(variant, (drained.get(variant) ?? 0) + n)
      }
    }
  } finally {
    for (const variant of variants) await removeSession(`${run}-${variant}`)
    await publisher.endAsync()
    await stores.get('idem-sqlite')?.close?.()
    await deleteKeys(redis, `${run}:*`)
    redis.disconnect()
    rmSync(dir, { recursive: true, force: true })
  }
  return variants.map((variant) => ({
    adapter: 'mqtt',
    variant,
    messagesPerSecond: (drained.get(variant) ?? 0) / ((elapsed.get(variant) ?? 1) / 1000),
  }))
}

async function createSession(clientId: string, topic: string): Promise<void> {
  const client = await mqtt.connectAsync(MQTT_URL, {
    ...mqttSessionOptions({ clientId, sessionExpiry: '1h' }),
    manualConnect: false,
  })
  await client.subscribeAsync(topic, { qos: 1 })
  await client.endAsync()
}

async function removeSession(clientId: string): Promise<void> {
  const client = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clientId, clean: true })
  await client.endAsync()
}

/** Publish `n` QoS 1 messages with distinct ids into the (offline) session's topic, all confirmed. */
async function fill(publisher: MqttClient, topic: string, n: number, idPrefix: string): Promise<void> {
  const pending: Promise<unknown>[] = []
  for (let i = 0; i < n; i++) {
    const payload = JSON.stringify({ orderId: i, amountCents: 4200 })
    const properties = { userProperties: { 'idem-key': `${idPrefix}-${i}` } }
    pending.push(publisher.publishAsync(topic, payload, { qos: 1, properties }))
  }
  await Promise.all(pending)
}

/** Connect the variant's consumer to its session and time it until `n` messages are settled; ms. */
async function drainChunk(
  variant: Variant,
  clientId: string,
  topic: string,
  n: number,
  store: IdempotencyStore | undefined,
): Promise<number> {
  let first = 0
  let last = 0
  let settled = 0
  const unexpected: string[] = []
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const count = () => {
    if (first === 0) first = performance.now()
    if (++settled === n) {
      last = performance.now()
      done()
    }
  }
  const client = mqtt.connect(MQTT_URL, mqttSessionOptions({ clientId, sessionExpiry: '1h' }))
  client.on('error', () => {})
  let close: () => Promise<void>
  if (variant === 'raw') {
    // The same subscriber without Idem: decode, a no-op handler, then the PUBACK.
    const handler = (_payload: unknown) => undefined
    client.options.customHandleAcks = (_topic, message, _packet, ack) => {
      if (first === 0) first = performance.now()
      handler(JSON.parse(message.toString()))
      ack(0)
      if (++settled === n) {
        last = performance.now()
        done()
      }
    }
    await new Promise<void>((resolve) => {
      client.once('connect', () => resolve())
      client.connect()
    })
    close = () => client.endAsync(true)
  } else {
    const deadLetter = { topic: `${topic}/dead`, client: await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5 }) }
    const idem = new Idempotency({ store: store as IdempotencyStore, scope: 'bench' })
    // Listeners go on before consumeMqtt: the session's messages flow as soon as the client connects.
    const consumer = new IdempotentConsumer({ idem, handler: () => undefined })
    consumer.on('received', () => {
      if (first === 0) first = performance.now()
    })
    consumer.on('settled', (result) => {
      if (result.outcome === 'executed') count()
      else unexpected.push(`${result.outcome} ${result.reason ?? ''}`)
    })
    const handle = await consumeMqtt({ client, topics: topic, consumer, deadLetter })
    close = async () => {
      await handle.close()
      await deadLetter.client.endAsync()
    }
  }
  const timeout = setTimeout(() => done(), CHUNK_TIMEOUT_MS)
  await finished
  clearTimeout(timeout)
  await close()
  if (settled < n) {
    const why = unexpected.length > 0 ? `; other outcomes: ${unexpected.slice(0, 3).join(', ')}` : ''
    throw new Error(`${variant}: ${settled} of ${n} messages executed${why}`)
  }
  return last - first
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  const messages = Number(process.env.IDEM_BENCH_MQTT_MESSAGES ?? (quick ? 1800 : 18_000))
  const rows = await benchMqtt({ messages, quick })
  printRows(rows)
}
