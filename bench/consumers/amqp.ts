// RabbitMQ consumer throughput: messages/s drained from a pre-filled quorum queue, without Idem
// (manual ack after a no-op handler), the same with a record per message in Redis written by hand
// (the floor of any consumer that keeps one), and through consumeAmqp with Idem on a RedisStore
// (per message and batched) and on a SqliteStore, with the same prefetch, all on the same broker.
// Called by bench/consumers.ts; alone: npx tsx bench/consumers/amqp.ts [--quick]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import amqp from 'amqplib'
import { Redis } from 'ioredis'
import { consumeAmqp, DEFAULT_DELAY_TIERS } from '../../src/brokers/amqp/index.js'
import type { IdempotencyStore } from '../../src/contract/types.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js'
import {
  BROKER_VARIANTS,
  deleteKeys,
  fencedRecordPerMessage,
  median,
  printRows,
  type RecordPerMessage,
  type Row,
  redisRecordPerMessage,
} from './shared.js'

export type { Row }

type Variant = Row['variant']

const AMQP_URL = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Unacknowledged messages the broker sends ahead, and handlers at once, the same for every variant. */
const PREFETCH = Number(process.env.IDEM_BENCH_AMQP_PREFETCH ?? 256)
const CONCURRENCY = Number(process.env.IDEM_BENCH_AMQP_CONCURRENCY ?? 128)
const BATCH = Number(process.env.IDEM_BENCH_AMQP_BATCH ?? 64)

export async function benchAmqp(opts: { messages: number; quick: boolean }): Promise<Row[]> {
  const connection = await amqp.connect(AMQP_URL)
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true })
  const run = `idem_bench_amqp_${process.pid}_${Date.now().toString(36)}`
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-amqp-'))
  const variants = BROKER_VARIANTS
  // Interleaved rounds, so that a noisy moment on the shared machine hits every variant alike; the median counts.
  const rounds = opts.quick ? 1 : 3
  const samples = new Map<Variant, number[]>(variants.map((v) => [v, []]))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const queue = `${run}.${variant}.${round}`
        await fill(connection, queue, opts.messages)
        try {
          samples.get(variant)?.push(await drain(connection, redis, variant, queue, opts.messages, dir))
        } finally {
          await dropQueue(connection, queue)
        }
      }
    }
  } finally {
    await deleteKeys(redis, `${run}*`)
    redis.disconnect()
    await connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return variants.map((variant) => ({
    adapter: 'amqp',
    variant,
    messagesPerSecond: median(samples.get(variant) ?? []),
  }))
}

/** Declare `queue` (quorum) and publish `n` persistent JSON messages with ids, confirmed (untimed). */
async function fill(connection: amqp.ChannelModel, queue: string, n: number): Promise<void> {
  const channel = await connection.createConfirmChannel()
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  for (let i = 0; i < n; i++) {
    const body = Buffer.from(JSON.stringify({ orderId: i, amountCents: 4200 }))
    channel.sendToQueue(queue, body, { persistent: true, messageId: `${queue}-${i}`, contentType: 'application/json' })
    if (i % 1000 === 999) await channel.waitForConfirms()
  }
  await channel.waitForConfirms()
  await channel.close()
}

async function drain(
  connection: amqp.ChannelModel,
  redis: Redis,
  variant: Variant,
  queue: string,
  n: number,
  dir: string,
): Promise<number> {
  if (variant === 'raw') return rawDrain(connection, queue, n)
  if (variant === 'floor-redis') return rawDrain(connection, queue, n, redisRecordPerMessage(redis, `${queue}:floor:`))
  if (variant === 'fenced-floor-redis')
    return rawDrain(connection, queue, n, fencedRecordPerMessage(redis, `${queue}:floor:`))
  const store: IdempotencyStore =
    variant === 'idem-sqlite'
      ? new SqliteStore({ client: join(dir, `${queue}.db`) })
      : new RedisStore({ client: redis, prefix: `${queue}:idem:` })
  if (store instanceof SqliteStore) store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'bench' })
  let settled = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const startedAt = performance.now()
  const subscription = await consumeAmqp({
    client: connection,
    queue,
    prefetch: PREFETCH,
    ...(variant === 'idem-redis-batch' ? { batch: { size: BATCH, maxWait: 5 } } : {}),
    idem,
    concurrency: CONCURRENCY,
    handler: () => undefined,
  })
  subscription.consumer.on('settled', (result) => {
    if (result.outcome !== 'executed') throw new Error(`${variant}: ${result.outcome} ${result.reason ?? ''}`)
    if (++settled === n) done()
  })
  await finished
  const elapsed = performance.now() - startedAt
  await subscription.close()
  if (store instanceof SqliteStore) await store.close()
  return n / (elapsed / 1000)
}

/**
 * The same consumer without Idem: prefetch, JSON.parse, a no-op handler, then basic.ack per message;
 * with `recordPerMessage`, the handler runs through it (the `floor-redis` variant).
 */
async function rawDrain(
  connection: amqp.ChannelModel,
  queue: string,
  n: number,
  recordPerMessage?: RecordPerMessage,
): Promise<number> {
  const channel = await connection.createChannel()
  await channel.prefetch(PREFETCH, false)
  const handler = async (_payload: unknown) => undefined
  let acked = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const startedAt = performance.now()
  await channel.consume(
    queue,
    (message) => {
      if (message === null) return
      let handled: Promise<unknown>
      if (recordPerMessage === undefined) handled = handler(JSON.parse(message.content.toString('utf8')))
      else {
        const body = message.content.toString('utf8')
        handled = recordPerMessage(message.properties.messageId as string, body, () => handler(JSON.parse(body)))
      }
      void handled.then(() => {
        channel.ack(message, false)
        if (++acked === n) done()
      })
    },
    { noAck: false },
  )
  await finished
  const elapsed = performance.now() - startedAt
  await channel.close()
  return n / (elapsed / 1000)
}

async function dropQueue(connection: amqp.ChannelModel, queue: string): Promise<void> {
  const channel = await connection.createChannel()
  for (const q of [queue, `${queue}.idem.dlq`, ...DEFAULT_DELAY_TIERS.map((ms) => `${queue}.idem.delay.${ms}`)]) {
    await channel.deleteQueue(q)
  }
  await channel.deleteExchange(`${queue}.idem.dlx`)
  await channel.close()
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  const messages = Number(process.env.IDEM_BENCH_AMQP_MESSAGES ?? (quick ? 2000 : 20_000))
  const rows = await benchAmqp({ messages, quick })
  printRows(rows)
}
