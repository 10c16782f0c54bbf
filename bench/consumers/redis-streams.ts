// Redis Streams consumer throughput: messages/s drained from a pre-filled stream by a consumer-group
// member, without Idem (XREADGROUP, a no-op handler, XACK per message), the same with a record per
// message in Redis written by hand (the floor of any consumer that keeps one), and through
// consumeRedisStream with Idem on a RedisStore (per message and batched) and on a SqliteStore, all
// on the same Redis.
// Called by bench/consumers.ts; alone: npx tsx bench/consumers/redis-streams.ts [--quick]

import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { consumeRedisStream } from '../../src/brokers/redis-streams/index.js'
import type { IdempotencyStore } from '../../src/contract/types.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js'
import { machineLine } from '../lib/machine.js'
import {
  BROKER_VARIANTS,
  deleteKeys,
  fencedRecordPerMessage,
  median,
  type RecordPerMessage,
  type Row,
  redisRecordPerMessage,
} from './shared.js'

export type { Row }

type Variant = Row['variant']

/** One drain: messages/s, and this process's CPU time per message (user + system), which a busy machine disturbs less. */
interface Sample {
  rate: number
  cpuMicros: number
}

/** Starts the clock and the CPU meter; `stop(n)` gives the sample for `n` messages. */
function meter(): { stop(n: number): Sample } {
  const startedAt = performance.now()
  const cpu = process.cpuUsage()
  return {
    stop(n) {
      const elapsed = performance.now() - startedAt
      const used = process.cpuUsage(cpu)
      return { rate: n / (elapsed / 1000), cpuMicros: (used.user + used.system) / n }
    },
  }
}

const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Entries per XREADGROUP, and messages in flight at once (several reads' worth), the same for every variant. */
const COUNT = Number(process.env.IDEM_BENCH_RS_COUNT ?? 64)
const CONCURRENCY = Number(process.env.IDEM_BENCH_RS_CONCURRENCY ?? 256)
/** IDEM_BENCH_RS_AUTOPIPELINING=1: ioredis' enableAutoPipelining on every client of every variant (off by default, as in ioredis). */
const AUTO_PIPELINING = process.env.IDEM_BENCH_RS_AUTOPIPELINING === '1'
const clientOptions = { enableAutoPipelining: AUTO_PIPELINING }

export async function benchRedisStreams(opts: { messages: number; quick: boolean }): Promise<Row[]> {
  return (await measureRedisStreams(opts)).map(({ cpuMicros: _, ...row }) => row)
}

async function measureRedisStreams(opts: {
  messages: number
  quick: boolean
}): Promise<(Row & { cpuMicros: number })[]> {
  const redis = new Redis(REDIS_URL, clientOptions)
  const run = `idem_bench_rs_${process.pid}_${Date.now().toString(36)}`
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-rs-'))
  const variants = BROKER_VARIANTS
  // Interleaved rounds, so that a noisy moment on the shared machine hits every variant alike; the median counts.
  const rounds = opts.quick ? 1 : 3
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const name = `${run}:${variant}:${round}`
        samples.get(variant)?.push(await drain(redis, variant, name, opts.messages, dir))
        await deleteKeys(redis, `${name}*`)
      }
    }
  } finally {
    await deleteKeys(redis, `${run}*`)
    redis.disconnect()
    rmSync(dir, { recursive: true, force: true })
  }
  return variants.map((variant) => ({
    adapter: 'redis-streams',
    variant,
    messagesPerSecond: median((samples.get(variant) ?? []).map((x) => x.rate)),
    cpuMicros: median((samples.get(variant) ?? []).map((x) => x.cpuMicros)),
  }))
}

/** Fill `stream` with `n` messages (untimed), then time one consumer draining it; messages/s. */
async function drain(redis: Redis, variant: Variant, stream: string, n: number, dir: string): Promise<Sample> {
  const group = 'bench'
  await redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  for (let i = 0; i < n; i += 1000) {
    const pipeline = redis.pipeline()
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      pipeline.xadd(stream, '*', 'id', `${stream}-${j}`, 'payload', JSON.stringify({ orderId: j, amountCents: 4200 }))
    }
    await pipeline.exec()
  }
  if (variant === 'raw') return rawDrain(redis, stream, group, n)
  if (variant === 'floor-redis' || variant === 'fenced-floor-redis') {
    // Its records through a client of their own, as Idem's store has; auto-pipelined (shared.ts).
    const records = new Redis(REDIS_URL, { enableAutoPipelining: true })
    const byHand = variant === 'floor-redis' ? redisRecordPerMessage : fencedRecordPerMessage
    try {
      return await rawDrain(redis, stream, group, n, byHand(records, `${stream}:floor:`))
    } finally {
      records.disconnect()
    }
  }

  const client = new Redis(REDIS_URL, clientOptions)
  let store: IdempotencyStore
  if (variant === 'idem-sqlite') store = new SqliteStore({ client: join(dir, `${variant}-${Date.now()}.db`) })
  else store = new RedisStore({ client, prefix: `${stream}:idem:` })
  const idem = new Idempotency({ store, scope: 'bench' })
  let settled = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const timing = meter()
  const consumer = await consumeRedisStream({
    client,
    stream,
    group,
    count: COUNT,
    batch: variant !== 'idem-redis',
    idem,
    concurrency: CONCURRENCY,
    handler: () => undefined,
    on: {
      settled: (result) => {
        if (result.outcome !== 'executed') throw new Error(`${variant}: ${result.outcome} ${result.reason ?? ''}`)
        if (++settled === n) done()
      },
    },
  })
  await finished
  const sample = timing.stop(n)
  await consumer.close()
  await (store as { close?: () => Promise<void> | void }).close?.()
  client.disconnect()
  return sample
}

/**
 * The same member without Idem: XREADGROUP COUNT up to the free room (at most CONCURRENCY messages in
 * flight, reading again once half of it is free), a no-op handler per entry, then XACK per entry;
 * with `recordPerMessage`, the handler runs through it (the `floor-redis` variant).
 */
async function rawDrain(
  redis: Redis,
  stream: string,
  group: string,
  n: number,
  recordPerMessage?: RecordPerMessage,
): Promise<Sample> {
  const reader = redis.duplicate()
  const handler = (_payload: unknown) => undefined
  let acked = 0
  let inFlight = 0
  let wake: (() => void) | undefined
  const timing = meter()
  // The clock stops at the last XACK, as the Idem drains' stops at the last settlement: not after a
  // final XREADGROUP that finds the stream empty and blocks for its 100 ms.
  let sample: Sample | undefined
  while (acked < n) {
    while (CONCURRENCY - inFlight < Math.min(COUNT, CONCURRENCY / 2) && inFlight > 0) {
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    if (acked >= n) break
    const count = Math.min(COUNT, CONCURRENCY - inFlight)
    const reply = (await reader.call(
      'XREADGROUP',
      'GROUP',
      group,
      'raw',
      'COUNT',
      count,
      'BLOCK',
      100,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][] | null
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      inFlight++
      void (async () => {
        if (recordPerMessage === undefined) await handler(JSON.parse(fields[3] as string))
        else
          await recordPerMessage(fields[1] as string, fields[3] as string, () =>
            handler(JSON.parse(fields[3] as string)),
          )
        await redis.call('XACK', stream, group, id)
        if (++acked === n) sample = timing.stop(n)
        inFlight--
        wake?.()
      })()
    }
  }
  reader.disconnect()
  return sample ?? timing.stop(n)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  const messages = Number(process.env.IDEM_BENCH_RS_MESSAGES ?? (quick ? 2000 : 20_000))
  const rows = await measureRedisStreams({ messages, quick })
  const raw = rows.find((r) => r.variant === 'raw')?.messagesPerSecond ?? 1
  console.log(machineLine())
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (the machine may be shared)`,
  )
  console.log(
    `${messages} messages per drain, ${quick ? 1 : 3} round(s), median; COUNT ${COUNT}, ${CONCURRENCY} in flight`,
  )
  for (const row of rows) {
    const ratio = `${((row.messagesPerSecond / raw) * 100).toFixed(0)}%`
    console.log(
      `${row.variant.padEnd(18)} ${Math.round(row.messagesPerSecond).toString().padStart(8)} msg/s  ${ratio.padStart(4)}  ${row.cpuMicros.toFixed(0).padStart(4)} µs CPU/msg`,
    )
  }
}
