// Time-window dedup vs record-based dedup on one stream: 200 000 events from 64 sources, 10% of
// them repeats of a recent event of the same source. Each path takes the stream in batches of 100
// (what a pull consumer hands the core): the window answers a batch with one seenMany, records
// with 100 concurrent idem.run calls. Prints events/s, the bytes each leaves in Redis, and the
// ratios; then the bytes per event of the two Redis designs for a window (a key per event with
// SET NX PX, or a sorted set per source). See docs/window.md.
//
//   npx tsx bench/window.ts            full run (200 000 events)
//   npx tsx bench/window.ts --quick    20 000 events

import os from 'node:os'
import { Redis } from 'ioredis'
import { Idempotency } from '../src/core/idempotency.js'
import { InProgressError } from '../src/errors.js'
import { MemoryStore } from '../src/stores/memory/memory-store.js'
import { RedisStore } from '../src/stores/redis/redis-store.js'
import { memoryWindow } from '../src/window/memory-window.js'
import { redisWindow } from '../src/window/redis-window.js'
import { DedupWindow, type WindowEntry } from '../src/window/window.js'

const QUICK = process.argv.includes('--quick')
const EVENTS = QUICK ? 20_000 : 200_000
const SOURCES = 64
const REPEAT_RATE = 0.1
const BATCH = 100
const RUN = `idem:bench:window:${process.pid}:`

/** A seeded generator, so that every path sees the same stream. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

function stream(): WindowEntry[] {
  const next = random(42)
  const recent: string[][] = Array.from({ length: SOURCES }, () => [])
  const out: WindowEntry[] = []
  let n = 0
  for (let i = 0; i < EVENTS; i++) {
    const s = Math.floor(next() * SOURCES)
    const mine = recent[s] as string[]
    if (mine.length > 0 && next() < REPEAT_RATE) {
      out.push({ source: `device-${s}`, id: mine[Math.floor(next() * mine.length)] as string })
      continue
    }
    // A telemetry id as a device would set it: a UUID-sized string.
    const id = `${s.toString(16).padStart(4, '0')}-${(n++).toString(16).padStart(12, '0')}-0000-7000-8000`
    out.push({ source: `device-${s}`, id })
    mine.push(id)
    if (mine.length > 50) mine.shift()
  }
  return out
}

interface Outcome {
  name: string
  seconds: number
  dropped: number
  bytes?: number
  keys?: number
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1])
}

/** Keys under `prefix` and their summed MEMORY USAGE (exact, key by key). */
async function bytesUnder(redis: Redis, prefix: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0'
  let keys = 0
  let bytes = 0
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (batch.length === 0) continue
    const pipeline = redis.pipeline()
    for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', 0)
    for (const [, reply] of (await pipeline.exec()) ?? []) bytes += Number(reply ?? 0)
    keys += batch.length
  } while (cursor !== '0')
  return { keys, bytes }
}

async function dropUnder(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (batch.length > 0) await redis.unlink(...batch)
  } while (cursor !== '0')
}

async function throughWindow(name: string, window: DedupWindow, events: readonly WindowEntry[]): Promise<Outcome> {
  let dropped = 0
  const started = performance.now()
  for (let i = 0; i < events.length; i += BATCH) {
    for (const repeat of await window.seenMany(events.slice(i, i + BATCH))) if (repeat) dropped++
  }
  return { name, seconds: (performance.now() - started) / 1000, dropped }
}

async function throughRecords(name: string, idem: Idempotency, events: readonly WindowEntry[]): Promise<Outcome> {
  let executed = 0
  const started = performance.now()
  for (let i = 0; i < events.length; i += BATCH) {
    await Promise.all(
      events.slice(i, i + BATCH).map((event) =>
        idem
          .run({ key: `${event.source}.${event.id}`, payload: event }, () => {
            executed++
            return true
          })
          // A repeat inside the same batch finds the first copy in progress: a consumer would
          // retry it after the lease and replay it; here it counts as the duplicate it is.
          .catch((error: unknown) => {
            if (!(error instanceof InProgressError)) throw error
          }),
      ),
    )
  }
  return { name, seconds: (performance.now() - started) / 1000, dropped: events.length - executed }
}

async function main(): Promise<void> {
  console.log(`window bench: ${EVENTS} events, ${SOURCES} sources, ${REPEAT_RATE * 100}% repeats, batches of ${BATCH}`)
  console.log(
    `load average before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} (${os.availableParallelism()} cores)`,
  )
  const events = stream()
  const expectedRepeats = new Set<string>()
  let repeats = 0
  for (const e of events) {
    const k = `${e.source}\n${e.id}`
    if (expectedRepeats.has(k)) repeats++
    else expectedRepeats.add(k)
  }
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 2 })
  const results: Outcome[] = []
  try {
    const memStore = memoryWindow()
    results.push(await throughWindow('window, memory', new DedupWindow({ store: memStore, window: '10m' }), events))

    const windowPrefix = `${RUN}w:`
    const before = await usedMemory(redis)
    const redisResult = await throughWindow(
      'window, Redis (SET NX PX)',
      new DedupWindow({ store: redisWindow({ client: redis, prefix: windowPrefix }), window: '10m' }),
      events,
    )
    const after = await usedMemory(redis)
    const windowBytes = await bytesUnder(redis, windowPrefix)
    results.push({ ...redisResult, bytes: windowBytes.bytes, keys: windowBytes.keys })
    console.log(`  used_memory delta, window on Redis: ${after - before} bytes (shared server: indicative)`)

    results.push(
      await throughRecords('records, MemoryStore (idem.run)', new Idempotency({ store: new MemoryStore() }), events),
    )

    const recordPrefix = `${RUN}r:`
    const recordStore = new RedisStore({ client: redis, prefix: recordPrefix })
    const before2 = await usedMemory(redis)
    const recordResult = await throughRecords(
      'records, RedisStore (idem.run)',
      new Idempotency({ store: recordStore }),
      events,
    )
    const after2 = await usedMemory(redis)
    const recordBytes = await bytesUnder(redis, recordPrefix)
    results.push({ ...recordResult, bytes: recordBytes.bytes, keys: recordBytes.keys })
    console.log(`  used_memory delta, records on Redis: ${after2 - before2} bytes (shared server: indicative)`)

    console.log(`  expected repeats in the stream: ${repeats}; memory window holds ${memStore.size()} entries`)
    console.log('')
    console.log('path                              events/s   dropped   Redis keys   Redis bytes   bytes/key')
    for (const r of results) {
      const rate = Math.round(events.length / r.seconds)
      const perKey = r.keys ? Math.round((r.bytes ?? 0) / r.keys) : undefined
      console.log(
        `${r.name.padEnd(32)} ${String(rate).padStart(9)} ${String(r.dropped).padStart(9)} ${String(r.keys ?? '-').padStart(12)} ${String(r.bytes ?? '-').padStart(13)} ${String(perKey ?? '-').padStart(11)}`,
      )
      if (r.dropped !== repeats) console.log(`  !! ${r.name} dropped ${r.dropped}, expected ${repeats}`)
    }
    const rate = (name: string) => events.length / (results.find((r) => r.name.startsWith(name)) as Outcome).seconds
    console.log('')
    console.log(
      `ratio window/Redis vs records/RedisStore, events/s: ${(rate('window, Redis') / rate('records, RedisStore')).toFixed(2)}x`,
    )
    console.log(
      `ratio window/memory vs records/MemoryStore, events/s: ${(rate('window, memory') / rate('records, MemoryStore')).toFixed(2)}x`,
    )
    console.log(`ratio Redis bytes, records / window: ${(recordBytes.bytes / windowBytes.bytes).toFixed(2)}x`)

    await zsetComparison(redis, events)
    await dropUnder(redis, RUN)
  } finally {
    await dropUnder(redis, RUN).catch(() => {})
    redis.disconnect()
  }
  console.log('')
  console.log(
    `load average after: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  )
}

/**
 * The other Redis design, for its bytes: a sorted set per source, member = id, score = time (what
 * ZADD NX + ZREMRANGEBYSCORE keeps), against a key per event (SET NX PX), for the same 10 000 events.
 */
async function zsetComparison(redis: Redis, events: readonly WindowEntry[]): Promise<void> {
  const sample = events.slice(0, 10_000)
  const zPrefix = `${RUN}z:`
  const kPrefix = `${RUN}k:`
  const pipeline = redis.pipeline()
  const now = Date.now()
  for (const [i, e] of sample.entries()) {
    pipeline.zadd(`${zPrefix}${e.source}`, 'NX', now + i, e.id)
    pipeline.set(`${kPrefix}${e.source.length}:${e.source}:${e.id}`, '1', 'PX', 600_000, 'NX')
  }
  await pipeline.exec()
  const z = await bytesUnder(redis, zPrefix)
  const k = await bytesUnder(redis, kPrefix)
  const distinct = new Set(sample.map((e) => `${e.source}\n${e.id}`)).size
  console.log('')
  console.log(`Redis design, ${distinct} distinct events over ${SOURCES} sources:`)
  console.log(`  key per event (SET NX PX):        ${k.bytes} bytes, ${(k.bytes / distinct).toFixed(1)} per event`)
  console.log(`  sorted set per source (ZADD NX):  ${z.bytes} bytes, ${(z.bytes / distinct).toFixed(1)} per event`)
}

await main()
