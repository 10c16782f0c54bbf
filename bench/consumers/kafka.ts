// Kafka consumer throughput: messages/s drained by one consumer group member from a topic filled
// once before the run (the same records for every drain: each drain is a new group), without Idem
// (the same @platformatic/kafka Consumer, autocommit off, a no-op handler, the handled offsets
// committed every 100 ms) and through consumeKafka with Idem on a RedisStore (per message and
// batched) and in transaction mode on PostgreSQL, all on the same broker.
// Called by bench/consumers.ts; alone: npx tsx bench/consumers/kafka.ts [--quick]
//   IDEM_BENCH_KAFKA_PROFILE=1 adds two diagnostic variants (alone only): idem-memory-batch (the
//   batched consumer on a MemoryStore: the adapter and the core without a store round trip) and
//   raw-nocommit (the raw member without commits: the client's fetch alone).

import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import pg from 'pg'
import { consumeKafka } from '../../src/brokers/kafka/consume-kafka.js'
import { kafkaProducer } from '../../src/brokers/kafka/kafka-producer.js'
import type { IdempotencyStore } from '../../src/contract/types.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { fromPg } from '../../src/sql/pg/pg-database.js'
import { MemoryStore } from '../../src/stores/memory/memory-store.js'
import { PostgresStore } from '../../src/stores/postgres/postgres-store.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { machineLine } from '../lib/machine.js'
import { deleteKeys, median, type Row } from './shared.js'

/** A row of this module in bench/consumers.ts: the shared variants plus transaction mode on PostgreSQL. */
export interface KafkaRow extends Omit<Row, 'variant'> {
  variant: Row['variant'] | 'idem-pg-transaction'
}
/** …and the diagnostic variants of IDEM_BENCH_KAFKA_PROFILE=1. */
type Variant = KafkaRow['variant'] | 'idem-memory-batch' | 'raw-nocommit'

const BROKER = process.env.IDEM_KAFKA_BROKER ?? '127.0.0.1:9092'
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PG_URL = process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
/** Partitions of the topic; the member owns them all. */
const PARTITIONS = Number(process.env.IDEM_BENCH_KAFKA_PARTITIONS ?? 8)
/** Handlers at once in the Idem variants (the core's `concurrency`). */
const CONCURRENCY = Number(process.env.IDEM_BENCH_KAFKA_CONCURRENCY ?? 64)
/** consumeKafka's `ordering`: 'partition' (its default) or 'key' (every record here has a key of its own). */
const ORDERING = (process.env.IDEM_BENCH_KAFKA_ORDERING ?? 'partition') as 'partition' | 'key'
/** How often the raw member commits what it handled: consumeKafka's default commitInterval. */
const COMMIT_EVERY_MS = 100
const PROFILE = process.env.IDEM_BENCH_KAFKA_PROFILE === '1'

/** One drain: messages/s from the first record to the last settled, and this process's CPU time per message. */
interface Sample {
  rate: number
  cpuMicros: number
}

export async function benchKafka(opts: { messages: number; quick: boolean }): Promise<KafkaRow[]> {
  return (await measureKafka(opts, false)).map(({ cpuMicros: _, variant, ...row }) => ({
    ...row,
    variant: variant as KafkaRow['variant'],
  }))
}

async function measureKafka(
  opts: { messages: number; quick: boolean },
  profile: boolean,
): Promise<{ adapter: string; variant: Variant; messagesPerSecond: number; cpuMicros: number }[]> {
  const run = `idem-bench-kafka-${process.pid}-${Date.now().toString(36)}`
  const topic = run
  const brokers = [BROKER]
  const admin = new Admin({ clientId: 'idem-bench-admin', bootstrapBrokers: brokers })
  const producerClient = new Producer({ clientId: 'idem-bench-producer', bootstrapBrokers: brokers, idempotent: true })
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true })
  const pool = new pg.Pool({ connectionString: PG_URL, max: 16 })
  pool.on('error', () => {})
  const schema = run.replaceAll('-', '_')
  const variants: Variant[] = ['raw', 'idem-redis', 'idem-redis-batch', 'idem-pg-transaction']
  if (profile) variants.push('idem-memory-batch', 'raw-nocommit')
  // Interleaved rounds, so that a noisy moment on the shared machine hits every variant alike; the median counts.
  const rounds = opts.quick ? 1 : 3
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]))
  const groups: string[] = []
  const pgStore = new PostgresStore({ client: pool, schema })
  try {
    await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
    await fill(producerClient, topic, opts.messages)
    await pgStore.ensureSchema()
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const group = `${run}-${variant}-${round}`
        groups.push(group)
        const drain = { topic, group, n: opts.messages, producer: producerClient }
        let sample: Sample
        if (variant === 'raw' || variant === 'raw-nocommit') sample = await rawDrain(drain, variant === 'raw')
        else {
          const store: IdempotencyStore =
            variant === 'idem-pg-transaction'
              ? pgStore
              : variant === 'idem-memory-batch'
                ? new MemoryStore()
                : new RedisStore({ client: redis, prefix: `${run}:idem:` })
          // A scope per drain: every key is new, every message executes.
          const idem = new Idempotency({ store, scope: group })
          sample = await idemDrain(drain, variant, idem, pool)
        }
        samples.get(variant)?.push(sample)
      }
    }
  } finally {
    await admin.deleteTopics({ topics: [topic, `${topic}.dead-letter`] }).catch(() => {})
    await admin.deleteGroups({ groups }).catch(() => {})
    await admin.close()
    await producerClient.close()
    await deleteKeys(redis, `${run}*`)
    redis.disconnect()
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }
  return variants.map((variant) => ({
    adapter: 'kafka',
    variant,
    messagesPerSecond: median((samples.get(variant) ?? []).map((x) => x.rate)),
    cpuMicros: median((samples.get(variant) ?? []).map((x) => x.cpuMicros)),
  }))
}

/** Publish `n` JSON records with ids (kafkaProducer, 1,000 a request, one request at a time) and keys of their own; untimed. */
async function fill(client: Producer, topic: string, n: number): Promise<void> {
  const producer = kafkaProducer({ client, topic, recordKey: (m) => m.id })
  for (let i = 0; i < n; i += 1000) {
    const chunk = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      id: `${topic}-${i + j}`,
      payload: { orderId: i + j, amountCents: 4200 },
    }))
    await producer.publishMany(chunk)
  }
}

interface Drain {
  topic: string
  group: string
  n: number
  producer: Producer
}

/** The member every variant uses: a new group each drain, so that it reads the topic from the start. */
function member(group: string): Consumer {
  return new Consumer({ clientId: 'idem-bench', groupId: group, bootstrapBrokers: [BROKER], maxWaitTime: 100 })
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

/**
 * The same member without Idem, as a careful hand-written consumer: the client's stream with the
 * options consumeKafka passes (committed offsets, earliest, autocommit off, read_committed), JSON
 * decoding, a no-op handler, and every 100 ms a commit of the next offset of each partition whose
 * records were handled.
 */
async function rawDrain(d: Drain, commits: boolean): Promise<Sample> {
  const client = member(d.group)
  const handler = async (_payload: unknown) => undefined
  const handled = new Map<number, bigint>()
  let count = 0
  let timing: ReturnType<typeof meter> | undefined
  let sample: Sample | undefined
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const stream = await client.consume({
    topics: [d.topic],
    mode: 'committed',
    fallbackMode: 'earliest',
    autocommit: false,
    isolationLevel: 1,
  })
  let committing = Promise.resolve()
  const commit = async () => {
    if (handled.size === 0) return
    const offsets = [...handled].map(([partition, offset]) => ({ topic: d.topic, partition, offset, leaderEpoch: -1 }))
    handled.clear()
    await client.commit({ offsets })
  }
  const timer = setInterval(() => {
    if (commits) committing = committing.then(commit)
  }, COMMIT_EVERY_MS)
  stream.on('data', (message) => {
    timing ??= meter()
    void handler(JSON.parse(message.value.toString('utf8'))).then(() => {
      const next = message.offset + 1n
      if ((handled.get(message.partition) ?? -1n) < next) handled.set(message.partition, next)
      if (++count === d.n) {
        sample = (timing as ReturnType<typeof meter>).stop(d.n)
        done()
      }
    })
  })
  await finished
  clearInterval(timer)
  await committing
  if (commits) await commit()
  await stream.close()
  await client.close()
  return sample as Sample
}

async function idemDrain(d: Drain, variant: Variant, idem: Idempotency, pool: pg.Pool): Promise<Sample> {
  const client = member(d.group)
  let settled = 0
  let timing: ReturnType<typeof meter> | undefined
  let sample: Sample | undefined
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const common = {
    client,
    producer: d.producer,
    topics: [d.topic],
    ordering: ORDERING,
    batch: variant !== 'idem-redis',
    idem,
    concurrency: CONCURRENCY,
    on: {
      received: () => {
        timing ??= meter()
      },
      settled: (result: { outcome: string; reason?: string }) => {
        if (result.outcome !== 'executed') throw new Error(`${variant}: ${result.outcome} ${result.reason ?? ''}`)
        if (++settled === d.n) {
          sample = (timing as ReturnType<typeof meter>).stop(d.n)
          done()
        }
      },
    },
  }
  const handle =
    variant === 'idem-pg-transaction'
      ? await consumeKafka({ ...common, db: fromPg(pool), transactionHandler: () => undefined })
      : await consumeKafka({ ...common, handler: () => undefined })
  await finished
  await handle.close()
  await client.close()
  return sample as Sample
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  const messages = Number(process.env.IDEM_BENCH_KAFKA_MESSAGES ?? (quick ? 2000 : 20_000))
  const rows = await measureKafka({ messages, quick }, PROFILE)
  const raw = rows.find((r) => r.variant === 'raw')?.messagesPerSecond ?? 1
  console.log(machineLine())
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (the machine may be shared)`,
  )
  console.log(
    `${messages} messages per drain, ${quick ? 1 : 3} round(s), median; ${PARTITIONS} partitions, concurrency ${CONCURRENCY}, ordering '${ORDERING}'`,
  )
  for (const row of rows) {
    const ratio = `${((row.messagesPerSecond / raw) * 100).toFixed(0)}%`
    console.log(
      `${row.variant.padEnd(20)} ${Math.round(row.messagesPerSecond).toString().padStart(8)} msg/s  ${ratio.padStart(4)}  ${row.cpuMicros.toFixed(0).padStart(4)} µs CPU/msg`,
    )
  }
}
