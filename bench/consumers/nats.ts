// NATS JetStream consumer throughput: messages/s drained from a pre-filled stream by a durable pull
// consumer, without Idem (fetch sized by free room, a no-op handler, ack per message), the same with
// a record per message in Redis written by hand (the floor of any consumer that keeps one), and
// through consumeJetStream with Idem on a RedisStore (per message and batched) and on a
// SqliteStore, all on the same NATS server. Called by bench/consumers.ts; alone: npx tsx bench/consumers/nats.ts [--quick]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { AckPolicy, connect, type JetStreamManager, type NatsConnection, nanos, StorageType } from 'nats'
import { consumeJetStream } from '../../src/brokers/nats/index.js'
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

const NATS_URL = process.env.IDEM_NATS_URL ?? '127.0.0.1:4222'
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Most messages per pull, and messages in flight at once, the same for every variant. */
const COUNT = Number(process.env.IDEM_BENCH_NATS_COUNT ?? 64)
const CONCURRENCY = Number(process.env.IDEM_BENCH_NATS_CONCURRENCY ?? 256)

export async function benchNats(opts: { messages: number; quick: boolean }): Promise<Row[]> {
  const nc = await connect({ servers: NATS_URL })
  const jsm = await nc.jetstreamManager()
  const run = `idem_bench_nats_${process.pid}_${Date.now().toString(36)}`
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-nats-'))
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true })
  const variants = BROKER_VARIANTS
  // Interleaved rounds, so that a noisy moment on the shared machine hits every variant alike; the median counts.
  const rounds = opts.quick ? 1 : 3
  const samples = new Map<Variant, number[]>(variants.map((v) => [v, []]))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const stream = `${run}_${variant.replaceAll('-', '_')}_${round}`
        await fill(nc, jsm, stream, opts.messages)
        try {
          const rate =
            variant === 'raw'
              ? await rawDrain(nc, stream, opts.messages)
              : variant === 'floor-redis'
                ? await rawDrain(nc, stream, opts.messages, redisRecordPerMessage(redis, `${stream}:floor:`))
                : variant === 'fenced-floor-redis'
                  ? await rawDrain(nc, stream, opts.messages, fencedRecordPerMessage(redis, `${stream}:floor:`))
                  : await idemDrain(nc, redis, variant, stream, opts.messages, dir)
          samples.get(variant)?.push(rate)
        } finally {
          await jsm.streams.delete(stream).catch(() => {})
        }
      }
    }
  } finally {
    await deleteKeys(redis, `${run}*`)
    redis.disconnect()
    await nc.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return variants.map((variant) => ({
    adapter: 'nats',
    variant,
    messagesPerSecond: median(samples.get(variant) ?? []),
  }))
}

/** A memory stream holding `n` messages with ids, and a durable pull consumer on it (untimed). */
async function fill(nc: NatsConnection, jsm: JetStreamManager, stream: string, n: number): Promise<void> {
  await jsm.streams.add({ name: stream, subjects: [`${stream}.in`], storage: StorageType.Memory })
  await jsm.consumers.add(stream, {
    durable_name: 'bench',
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000),
    max_deliver: -1,
    max_ack_pending: CONCURRENCY * 2,
  })
  const js = nc.jetstream()
  const encode = (j: number) => new TextEncoder().encode(JSON.stringify({ orderId: j, amountCents: 4200 }))
  for (let i = 0; i < n; i += 1000) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 1000); j++)
      batch.push(js.publish(`${stream}.in`, encode(j), { msgID: `${stream}-${j}` }))
    await Promise.all(batch)
  }
}

async function idemDrain(
  nc: NatsConnection,
  redis: Redis,
  variant: Variant,
  stream: string,
  n: number,
  dir: string,
): Promise<number> {
  let store: IdempotencyStore
  if (variant === 'idem-sqlite') store = new SqliteStore({ client: join(dir, `${stream}.db`) })
  else store = new RedisStore({ client: redis, prefix: `${stream}:idem:` })
  const idem = new Idempotency({ store, scope: 'bench' })
  let settled = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const startedAt = performance.now()
  const subscription = await consumeJetStream({
    client: nc,
    stream,
    durable: 'bench',
    deadLetterSubject: false,
    batch: variant !== 'idem-redis',
    maxBatch: COUNT,
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
  if (variant === 'idem-sqlite') await (store as SqliteStore).close()
  return n / (elapsed / 1000)
}

/**
 * The same pull consumer without Idem: fetch up to the free room (at most CONCURRENCY messages in
 * flight, COUNT per pull), a no-op handler per message, then ack() per message; with
 * `recordPerMessage`, the handler runs through it (the `floor-redis` variant), keyed by the
 * message's `Nats-Msg-Id`.
 */
async function rawDrain(
  nc: NatsConnection,
  stream: string,
  n: number,
  recordPerMessage?: RecordPerMessage,
): Promise<number> {
  const consumer = await nc.jetstream().consumers.get(stream, 'bench')
  const handler = async (_payload: unknown) => undefined
  // One decoder for every message, as Idem's decodeJson has: a TextDecoder per message would
  // slow the floor down by work Idem does not do.
  const utf8 = new TextDecoder()
  let acked = 0
  let received = 0
  let inFlight = 0
  let wake: (() => void) | undefined
  const startedAt = performance.now()
  // The clock stops at the last ack, as the Idem drains' stops at the last settlement: not after a
  // pull that finds nothing left and waits for its expiry.
  let elapsed: number | undefined
  while (acked < n) {
    while (inFlight >= CONCURRENCY) {
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    const messages = await consumer.fetch({ max_messages: Math.min(COUNT, CONCURRENCY - inFlight), expires: 1000 })
    for await (const msg of messages) {
      // The last pull asks for more than is left: stop it rather than wait for it to expire.
      if (++received === n) messages.stop()
      inFlight++
      void (async () => {
        if (recordPerMessage === undefined) await handler(JSON.parse(utf8.decode(msg.data)))
        else {
          const id = msg.headers?.get('Nats-Msg-Id') ?? `${stream}-${msg.seq}`
          const body = utf8.decode(msg.data)
          await recordPerMessage(id, body, () => handler(JSON.parse(body)))
        }
        msg.ack()
        if (++acked === n) elapsed = performance.now() - startedAt
        inFlight--
        wake?.()
      })()
    }
  }
  await nc.flush()
  return n / ((elapsed ?? performance.now() - startedAt) / 1000)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  const messages = Number(process.env.IDEM_BENCH_NATS_MESSAGES ?? (quick ? 2000 : 20_000))
  const rows = await benchNats({ messages, quick })
  printRows(rows)
}
