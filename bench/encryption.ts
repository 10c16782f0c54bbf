// What encryption at rest costs: Idempotency.run() with the `encryption` option (AES-256-GCM)
// against the same run() without it, on MemoryStore (where Idem's own CPU is all there is) and on
// RedisStore (a real round trip), for a small (100 B) and a larger (16 KB) result, new keys and
// duplicates, measured side by side in one run (bench/docs/encryption.md).
//
//   npx tsx bench/encryption.ts          full run (about 2.5 minutes; needs Redis on 127.0.0.1:6379)
//   npx tsx bench/encryption.ts --quick  smoke run for CI (figures indicative only)
//
// Each variant has its own Idempotency over its own store of the same kind; rounds interleave the
// variants (the order flips every round), figures are medians over rounds and each ratio the
// median of the per-round ratios (encrypted / plain). Also prints the bytes each result takes in
// the store, plain and sealed.

import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { ResultCipher } from '../src/core/encryption.js'
import { Idempotency } from '../src/core/idempotency.js'
import type { IdempotencyOptions } from '../src/core/options.js'
import { MemoryStore } from '../src/stores/memory/memory-store.js'
import { RedisStore } from '../src/stores/redis/redis-store.js'
import { mustNotRun, PAYLOAD, SCOPE } from './lib/fixtures.js'
import { interleavedRounds, type Pair, summarize } from './lib/interleave.js'
import { machineLine } from './lib/machine.js'
import type { Workload } from './lib/measure.js'
import { formatTable, opsFmt, ratioText } from './lib/report.js'

const args = new Set(process.argv.slice(2))
for (const arg of args) {
  if (arg !== '--quick') {
    console.error(`unknown argument ${arg}; usage: tsx bench/encryption.ts [--quick]`)
    process.exit(2)
  }
}
const quick = args.has('--quick')
const settings = quick
  ? { warmupSeconds: 0.05, rounds: 1, seconds: 0.1, sampleScale: 0.1 }
  : { warmupSeconds: 0.5, rounds: 9, seconds: 0.5, sampleScale: 1 }

const ENCRYPTION: IdempotencyOptions['encryption'] = {
  keys: { k1: randomBytes(32), k2: randomBytes(32) },
  current: 'k2',
}

/** A result whose stored JSON (`{"v":…}`) is `bytes` long: an id, a status and filler text. */
function resultOf(bytes: number): { id: string; status: string; detail: string } {
  const base = { id: 'ch_3PqK9x', status: 'succeeded', detail: '' }
  const overhead = JSON.stringify({ v: base }).length
  return { ...base, detail: 'Lorem ipsum dolor sit amet, '.repeat(bytes).slice(0, bytes - overhead) }
}
const SIZES = { small: resultOf(100), large: resultOf(16 * 1024) } as const
type Size = keyof typeof SIZES

/** An Idempotency over a store of its own; `short`: a retention of seconds, for new keys that pile up. */
type Make = (encrypted: boolean, short?: boolean) => Idempotency

/** New keys; on MemoryStore a fresh store every sample, so every variant inserts into maps of the same size. */
function newKeys(make: Make, encrypted: boolean, size: Size, sampleOps: number, fresh: boolean): Workload {
  const value = SIZES[size]
  const produce = async () => value
  let idem = make(encrypted, true)
  let n = 0
  return {
    sampleOps,
    prepare: fresh
      ? () => {
          idem = make(encrypted, true)
        }
      : undefined,
    op: () => idem.run({ key: `n${n++}`, payload: PAYLOAD }, produce),
  }
}

/** Completed keys that duplicates cycle through (a power of two). */
const DUP_KEYS = 1024

/** Duplicates of DUP_KEYS completed keys: each opens (or only parses) a stored result. */
async function duplicates(make: Make, encrypted: boolean, size: Size, sampleOps: number): Promise<Workload> {
  const idem = make(encrypted)
  const value = SIZES[size]
  for (let i = 0; i < DUP_KEYS; i += 64) {
    const chunk = Array.from({ length: 64 }, (_, j) => ({ key: `d${i + j}`, payload: PAYLOAD }))
    await Promise.all(idem.runMany(chunk, async () => value))
  }
  let n = 0
  return { sampleOps, op: () => idem.run({ key: `d${n++ & (DUP_KEYS - 1)}`, payload: PAYLOAD }, mustNotRun) }
}

async function workloadsOn(make: Make, sampleOps: number, fresh: boolean): Promise<Record<string, Workload>> {
  const out: Record<string, Workload> = {}
  for (const size of Object.keys(SIZES) as Size[]) {
    out[`${size}NewPlain`] = newKeys(make, false, size, sampleOps, fresh)
    out[`${size}NewSealed`] = newKeys(make, true, size, sampleOps, fresh)
    out[`${size}DupPlain`] = await duplicates(make, false, size, sampleOps)
    out[`${size}DupSealed`] = await duplicates(make, true, size, sampleOps)
  }
  return out
}

const ROWS: Pair<string>[] = (Object.keys(SIZES) as Size[]).flatMap((size) => [
  { label: `new key, ${size === 'small' ? '100 B' : '16 KB'}`, ours: `${size}NewSealed`, floor: `${size}NewPlain` },
  { label: `duplicate, ${size === 'small' ? '100 B' : '16 KB'}`, ours: `${size}DupSealed`, floor: `${size}DupPlain` },
])

async function measureRows(title: string, workloads: Record<string, Workload>): Promise<void> {
  const order = Object.keys(workloads)
  process.stderr.write(`${title}: warming up\n`)
  await interleavedRounds(workloads, order, {
    rounds: 1,
    seconds: settings.warmupSeconds,
    concurrency: 1,
    sampleScale: settings.sampleScale,
    label: `${title} warm-up`,
  })
  const figures = await interleavedRounds(workloads, order, {
    rounds: settings.rounds,
    seconds: settings.seconds,
    concurrency: 1,
    sampleScale: settings.sampleScale,
    label: title,
  })
  const lines = summarize(ROWS, figures).map((r) => [
    r.row.label,
    opsFmt.format(r.ours),
    opsFmt.format(r.floor),
    ratioText(r.ratio),
    `${ratioText(r.minRatio)}-${ratioText(r.maxRatio)}`,
    `${((1e6 / r.ours - 1e6 / r.floor) | 0).toString()} µs`,
  ])
  console.log(`\n${title}`)
  console.log(
    formatTable(['case', 'encrypted ops/s', 'plain ops/s', 'ratio', 'rounds min-max', 'added per call'], lines),
  )
}

/** The bytes each size takes in the store, plain and sealed under the current key. */
async function storedSizes(): Promise<void> {
  const lines: string[][] = []
  for (const size of Object.keys(SIZES) as Size[]) {
    const bytes: number[] = []
    for (const encryption of [undefined, ENCRYPTION]) {
      const store = new MemoryStore()
      const idem = new Idempotency({ store, scope: SCOPE, encryption })
      await idem.run({ key: 'size' }, async () => SIZES[size])
      bytes.push(Buffer.byteLength((await store.get(idem.recordId('size')))?.result ?? ''))
    }
    const [plain, sealed] = bytes as [number, number]
    lines.push([size === 'small' ? '100 B' : '16 KB', String(plain), String(sealed), `+${sealed - plain}`])
  }
  console.log('\nstored bytes')
  console.log(formatTable(['result', 'plain', 'encrypted', 'overhead'], lines))
}

/** The cipher alone, per call: seal and open of each size, beside JSON.parse of the same JSON. */
function cipherAlone(): void {
  const cipher = new ResultCipher(ENCRYPTION as NonNullable<typeof ENCRYPTION>)
  const id = `${SCOPE.length}:${SCOPE}:n123456`
  const fingerprint = 'x'.repeat(43)
  const perCall = (ops: number, fn: () => unknown): number => {
    for (let i = 0; i < ops / 10; i++) fn()
    const start = performance.now()
    for (let i = 0; i < ops; i++) fn()
    return ((performance.now() - start) * 1000) / ops
  }
  const lines: string[][] = []
  for (const size of Object.keys(SIZES) as Size[]) {
    const json = JSON.stringify({ v: SIZES[size] })
    const sealed = cipher.seal(json, Number.MAX_SAFE_INTEGER, id, fingerprint)
    const ops = quick ? 2_000 : size === 'small' ? 50_000 : 5_000
    lines.push([
      size === 'small' ? '100 B' : '16 KB',
      perCall(ops, () => cipher.seal(json, Number.MAX_SAFE_INTEGER, id, fingerprint)).toFixed(2),
      perCall(ops, () => cipher.open(sealed, id, fingerprint)).toFixed(2),
      perCall(ops, () => JSON.parse(json)).toFixed(2),
    ])
  }
  console.log('\nthe cipher alone (µs per call)')
  console.log(formatTable(['result', 'seal', 'open', 'JSON.parse (reference)'], lines))
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  console.log(machineLine())
  console.log(
    `method: ${quick ? 'QUICK (smoke run, figures indicative only), ' : ''}concurrency 1 (each run awaited), ` +
      `${settings.rounds} rounds x ${settings.seconds} s per variant, variants interleaved, medians over rounds`,
  )
  await storedSizes()
  cipherAlone()
  const memory: Make = (encrypted) =>
    new Idempotency({ store: new MemoryStore(), scope: SCOPE, encryption: encrypted ? ENCRYPTION : undefined })
  await measureRows('MemoryStore', await workloadsOn(memory, 10_000, true))

  const redis = new Redis('redis://127.0.0.1:6379')
  const prefix = `idem-bench-encryption-${process.pid}:`
  let store = 0
  try {
    const onRedis: Make = (encrypted, short) =>
      new Idempotency({
        store: new RedisStore({ client: redis, prefix: `${prefix}${store++}:` }),
        scope: SCOPE,
        // New keys of 16 KB pile up fast: a retention of seconds keeps Redis's memory flat.
        ttl: short ? '10s' : '1h',
        encryption: encrypted ? ENCRYPTION : undefined,
      })
    await measureRows('RedisStore (one local Redis)', await workloadsOn(onRedis, 1_000, false))
  } finally {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
    redis.disconnect()
  }
  console.log(`\ntotal ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
}

await main()
