// ShardedStore benchmark: what routing costs. One run, figures and ratios printed.
//
//   npx tsx bench/sharded.ts        needs PostgreSQL at IDEM_PG_URL (default postgres://postgres@127.0.0.1:5432/test)
//
// 1. placement: rendezvous over 3 shards with the shipped hash (FNV-1a + fmix32) vs SHA-256
//    (node:crypto), per id.
// 2. single begin, one at a time: ShardedStore over 3 MemoryStores vs one MemoryStore (the pure
//    routing cost), and over 3 PostgreSQL schemas vs one PostgresStore.
// 3. beginMany + completeMany of 100 items over 3 PostgreSQL schemas vs one PostgresStore.
// The two sides of each comparison run interleaved, round by round, so that a load change on a
// shared machine hits both alike.

import { createHash, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { MemoryStore } from 'idem'
import { PostgresStore } from 'idem/postgres'
import { Placement, ShardedStore } from 'idem/sharded'
import pg from 'pg'
import type { BeginResult, IdempotencyStore } from '../src/contract/types.js'
import { machineLine } from './lib/machine.js'
import { loadLine } from './stores/run.js'

const PG_URL = process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const LEASE = 30_000
const TTL = 600_000

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

function placementSection(): void {
  const names = ['s1', 's2', 's3']
  const placement = new Placement(names.map((name) => ({ name, store: new MemoryStore() })))
  const ids = Array.from({ length: 200_000 }, (_, i) => `10:bench-keys:order-${i}-${randomUUID().slice(0, 8)}`)
  const sha = (id: string) => {
    let best = ''
    let bestWeight = ''
    for (const name of names) {
      const w = createHash('sha256').update(name).update('\0').update(id).digest('hex').slice(0, 14)
      if (w > bestWeight) {
        best = name
        bestWeight = w
      }
    }
    return best
  }
  let sink = 0
  const time = (fn: (id: string) => unknown) => {
    const start = performance.now()
    for (const id of ids) if (fn(id) !== undefined) sink++
    return ids.length / ((performance.now() - start) / 1000)
  }
  // A warm-up pass of each, then the measured one.
  time((id) => placement.indexOf(id))
  time(sha)
  const fnv = time((id) => placement.indexOf(id))
  const crypto = time(sha)
  console.log('1. placement of one id over 3 shards (200,000 ids)')
  console.log(`   FNV-1a + fmix32 (shipped): ${fmt(fnv)} ids/s`)
  console.log(`   SHA-256 via node:crypto:   ${fmt(crypto)} ids/s`)
  console.log(`   ratio shipped / SHA-256:   ${(fnv / crypto).toFixed(1)}x`)
  // Read, so that the placements measured are not optimised away.
  if (sink !== 4 * ids.length) throw new Error(`placed ${sink} ids`)
}

/** ops/s of sequential `begin` of fresh ids, two stores interleaved in rounds of `per`. */
async function beginsPerSecond(a: IdempotencyStore, b: IdempotencyStore, rounds: number, per: number) {
  const spent = [0, 0]
  for (let r = 0; r < rounds; r++) {
    for (const [i, store] of [a, b].entries()) {
      const start = performance.now()
      for (let k = 0; k < per; k++) await store.begin(`b:${r}:${k}:${randomUUID()}`, 'fp', LEASE, TTL)
      spent[i] = (spent[i] ?? 0) + performance.now() - start
    }
  }
  const n = rounds * per
  return [n / ((spent[0] ?? 1) / 1000), n / ((spent[1] ?? 1) / 1000)] as const
}

/** Median ms of beginMany(100) then completeMany(100), two stores interleaved. */
async function batchMs(a: IdempotencyStore, b: IdempotencyStore, rounds: number) {
  const times: [number[], number[]] = [[], []]
  for (let r = 0; r < rounds; r++) {
    for (const [i, store] of [a, b].entries()) {
      const items = Array.from({ length: 100 }, (_, k) => ({ id: `m:${r}:${k}:${randomUUID()}`, fingerprint: 'fp' }))
      const start = performance.now()
      const begun = await store.beginMany(items, LEASE, TTL)
      const claims = begun as Extract<BeginResult, { outcome: 'acquired' }>[]
      await store.completeMany(
        items.map((item, k) => ({ id: item.id, token: claims[k]?.token ?? '', result: '{"ok":true}' })),
        TTL,
      )
      times[i === 0 ? 0 : 1].push(performance.now() - start)
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN
  return [median(times[0]), median(times[1])] as const
}

async function main(): Promise<void> {
  console.log(machineLine())
  console.log(loadLine('at start'))
  placementSection()

  const memory = new MemoryStore()
  const memoryShards = new ShardedStore({
    shards: ['m1', 'm2', 'm3'].map((name) => ({ name, store: new MemoryStore() })),
    ownsShards: true,
  })
  const [direct, routed] = await beginsPerSecond(memory, memoryShards, 20, 5000)
  console.log('2. single begin, sequential, fresh ids')
  console.log(`   one MemoryStore:                 ${fmt(direct)} ops/s`)
  console.log(`   ShardedStore over 3 MemoryStores: ${fmt(routed)} ops/s (ratio ${(routed / direct).toFixed(2)})`)
  await memory.close()
  await memoryShards.close()

  const pool = new pg.Pool({ connectionString: PG_URL, max: 20 })
  pool.on('error', () => {})
  const tag = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const schemas = [0, 1, 2, 3].map((i) => `idem_bench_shard_${tag}_${i}`)
  try {
    const stores = schemas.map((schema) => new PostgresStore({ client: pool, schema }))
    for (const store of stores) await store.ensureSchema()
    const [single, ...three] = stores as [PostgresStore, ...PostgresStore[]]
    const sharded = new ShardedStore({ shards: three.map((store, i) => ({ name: `pg-${i}`, store })) })

    const [one, over3] = await beginsPerSecond(single, sharded, 10, 200)
    console.log(`   one PostgresStore:                ${fmt(one)} ops/s`)
    console.log(`   ShardedStore over 3 PG schemas:   ${fmt(over3)} ops/s (ratio ${(over3 / one).toFixed(2)})`)

    await batchMs(single, sharded, 5) // warm-up
    const [oneMs, shardedMs] = await batchMs(single, sharded, 60)
    console.log('3. beginMany(100) + completeMany(100), median of 60 rounds')
    console.log(`   one PostgresStore:                ${oneMs.toFixed(2)} ms (${fmt(100_000 / oneMs)} items/s)`)
    console.log(
      `   ShardedStore over 3 PG schemas:   ${shardedMs.toFixed(2)} ms (${fmt(100_000 / shardedMs)} items/s; ` +
        `ratio of time ${(shardedMs / oneMs).toFixed(2)})`,
    )
    console.log(loadLine('at end'))
  } finally {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }
}

await main()
