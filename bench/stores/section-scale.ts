// Section "scale": run() throughput and p99 latency with many retained records against few, for
// Redis (two private servers, one per size, filled through the store's own beginMany/completeMany)
// and PostgreSQL (two tables of the store's schema, filled by INSERT ... SELECT generate_series with
// the column values the store writes, then VACUUM ANALYZE). Both sizes are measured interleaved.

import pg from 'pg'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import { Idempotency, type IdempotencyStore, recordId } from '../../src/index.js'
import { PostgresStore } from '../../src/stores/postgres/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { mustNotRun, PAYLOAD, produce, SCOPE, TTL_MS, VALUE } from '../lib/fixtures.js'
import { interleavedRounds } from '../lib/interleave.js'
import { measure, median, type Workload } from '../lib/measure.js'
import { formatTable, opsFmt, ratioText } from '../lib/report.js'
import { warmUp } from './compare.js'
import { fillCompleted } from './fill.js'
import { type BenchRun, SERVERS } from './run.js'
import type { Servers } from './servers.js'

type Store = 'redis' | 'pg'
type Size = 'Small' | 'Large'
type Kind = 'Dup' | 'New'
type Name = `${Store}${Size}${Kind}`

const CASES: readonly [Store, Kind, string][] = [
  ['redis', 'Dup', 'redis duplicate'],
  ['redis', 'New', 'redis new key'],
  ['pg', 'Dup', 'postgres duplicate'],
  ['pg', 'New', 'postgres new key'],
]
const ORDER: readonly Name[] = CASES.flatMap(([s, k]): Name[] => [`${s}Small${k}`, `${s}Large${k}`])
const WITHIN = 0.15

const count = (n: number) =>
  n >= 1_000_000 && n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : `${n}`

/** Fill a PostgresStore table with `n` completed records `r0`…, exactly as complete() leaves them. */
async function fillPg(store: PostgresStore, n: number, pool: pg.Pool): Promise<void> {
  if (recordId(SCOPE, 'r0') !== '5:bench:r0') throw new Error('bench: the record id format changed; update fillPg')
  const now = Date.now()
  await pool.query(
    `INSERT INTO ${store.names.qualifiedTable}
       (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
     SELECT '5:bench:r' || g, 'completed', $1, NULL, NULL, 1, $2::bytea, $3, $3, $4 FROM generate_series(0, $5 - 1) AS g`,
    [fingerprintOf(PAYLOAD), Buffer.from(JSON.stringify({ v: VALUE }), 'utf8'), now, now + TTL_MS, n],
  )
  await pool.query(`VACUUM ANALYZE ${store.names.qualifiedTable}`)
}

/** A generated record must read back like one the store completed itself, and replay. */
async function checkSameRecord(store: IdempotencyStore, idem: Idempotency): Promise<void> {
  await idem.run({ key: 'verify-new', payload: PAYLOAD }, produce)
  const own = await store.get(recordId(SCOPE, 'verify-new'))
  const generated = await store.get(recordId(SCOPE, 'r0'))
  // Retention to the second: a RedisStore completion of its own claim dates updatedAt by this
  // process's clock and expires by Redis' (docs/redis.md, Records), a few ms apart under load.
  const shape = (r: typeof own) =>
    r &&
    JSON.stringify([
      r.state,
      r.fingerprint,
      r.token,
      r.leaseUntil,
      r.attempt,
      r.result,
      Math.round((r.expiresAt - r.updatedAt) / 1000),
    ])
  if (own === null || shape(own) !== shape(generated)) {
    throw new Error(`bench: a generated record differs from the store's own: ${shape(generated)} vs ${shape(own)}`)
  }
  const replay = await idem.run({ key: 'r0', payload: PAYLOAD }, mustNotRun)
  if (replay.status !== 'replayed') throw new Error('bench: a generated record did not replay')
}

/**
 * Why a PostgreSQL duplicate may cost more with many records: buffer reads per lookup on one
 * connection of its own (pg_statio_user_tables, heap and indexes; pg_stat_force_next_flush makes
 * the backend publish its counters), against the table's size and shared_buffers.
 */
async function pgBlocksPerDuplicate(run: BenchRun, table: string, n: number): Promise<string> {
  const client = new pg.Client({ connectionString: SERVERS.pgUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    const store = new PostgresStore({ client: client, schema: run.sqlName, table })
    const idem = new Idempotency({ store, scope: SCOPE, ttl: TTL_MS })
    const io = async () => {
      await client.query('SELECT pg_stat_force_next_flush()')
      const { rows } = await client.query(
        `SELECT heap_blks_read + coalesce(idx_blks_read, 0) AS read, heap_blks_hit + coalesce(idx_blks_hit, 0) AS hit,
          pg_total_relation_size(relid) AS bytes, current_setting('shared_buffers') AS sb
         FROM pg_statio_user_tables WHERE schemaname = $1 AND relname = $2`,
        [run.sqlName, table],
      )
      const r = rows[0] as Record<string, string>
      return { read: Number(r.read), hit: Number(r.hit), bytes: Number(r.bytes), sb: r.sb }
    }
    let ops = 0
    const workload: Workload = {
      sampleOps: 500,
      op: () => {
        ops++
        return idem.run({ key: `r${Math.floor(Math.random() * n)}`, payload: PAYLOAD }, mustNotRun)
      },
    }
    const before = await io()
    await measure(workload, { seconds: run.settings.quick ? 0.1 : 1, concurrency: 1 })
    const after = await io()
    return (
      `postgres duplicates on ${count(n)} records (table + indexes ${(after.bytes / 2 ** 20).toFixed(1)} MiB, shared_buffers ${after.sb}): ` +
      `per lookup ${((after.read - before.read) / ops).toFixed(2)} blocks read from outside shared_buffers, ` +
      `${((after.hit - before.hit) / ops).toFixed(2)} found in them (${opsFmt.format(ops)} lookups, one connection)`
    )
  } finally {
    await client.end()
  }
}

export async function scaleSection(run: BenchRun, servers: Servers): Promise<void> {
  const { small, large, rounds, seconds } = run.settings.scale
  const { concurrency, sampleScale } = run.settings
  const sizes: Record<Size, number> = { Small: small, Large: large }
  const workloads = {} as Record<Name, Workload>
  const idems = {} as Record<`${Store}${Size}`, Idempotency>
  const pool = servers.pg()

  for (const size of ['Small', 'Large'] as const) {
    const n = sizes[size]
    const priv = await servers.privateRedis(size === 'Large' ? 0 : 1)
    await priv.client.flushall()
    const redisStore = new RedisStore({ client: priv.client })
    let t = performance.now()
    await fillCompleted(redisStore, { prefix: 'r', to: n, ttlMs: TTL_MS, batch: 1000 })
    const redisFill = (performance.now() - t) / 1000
    idems[`redis${size}`] = new Idempotency({ store: redisStore, scope: SCOPE, ttl: TTL_MS })
    const pgStore = new PostgresStore({ client: pool, schema: run.sqlName, table: `scale_${count(n).toLowerCase()}` })
    await pgStore.ensureSchema()
    t = performance.now()
    await fillPg(pgStore, n, pool)
    const pgFill = (performance.now() - t) / 1000
    const pgIdem = new Idempotency({ store: pgStore, scope: SCOPE, ttl: TTL_MS })
    idems[`pg${size}`] = pgIdem
    await checkSameRecord(pgStore, pgIdem)
    await checkSameRecord(redisStore, idems[`redis${size}`])
    console.log(
      `${count(n)} retained: redis on 127.0.0.1:${priv.port} filled in ${redisFill.toFixed(1)} s (beginMany/completeMany, ` +
        `${opsFmt.format(await priv.client.dbsize())} keys, used_memory ${/used_memory_human:(\S+)/.exec(await priv.client.info('memory'))?.[1]}); ` +
        `postgres ${pgStore.names.qualifiedTable} filled in ${pgFill.toFixed(1)} s (generate_series + VACUUM ANALYZE)`,
    )
    for (const store of ['redis', 'pg'] as const) {
      const idem = idems[`${store}${size}`]
      let fresh = 0
      let removed = 0
      workloads[`${store}${size}New`] = {
        sampleOps: store === 'redis' ? 1_000 : 200,
        // Redis: the previous sample's new keys go (untimed), so the small store stays small; it
        // writes tens of thousands of keys a second. PostgreSQL's few thousand rows stay.
        prepare:
          store === 'redis'
            ? async () => {
                const pipeline = priv.client.pipeline()
                for (; removed < fresh; removed++) pipeline.unlink(redisStore.key(recordId(SCOPE, `n${removed}`)))
                await pipeline.exec()
              }
            : undefined,
        op: () => idem.run({ key: `n${fresh++}`, payload: PAYLOAD }, produce),
      }
      // Duplicates pick any retained record, uniformly: no hot subset that caches would favour.
      workloads[`${store}${size}Dup`] = {
        sampleOps: store === 'redis' ? 1_000 : 500,
        op: () => idem.run({ key: `r${Math.floor(Math.random() * n)}`, payload: PAYLOAD }, mustNotRun),
      }
    }
  }

  await warmUp(run, workloads, ORDER, [1, concurrency])
  const header = [
    'case',
    `${count(small)} ops/s`,
    `${count(large)} ops/s`,
    'ops ratio',
    `${count(small)} p99 ms`,
    `${count(large)} p99 ms`,
    'p99 ratio',
    'goal',
  ]
  for (const c of [1, concurrency]) {
    const p99: Partial<Record<Name, number[]>> = {}
    const figures = await interleavedRounds(workloads, ORDER, {
      rounds,
      seconds,
      concurrency: c,
      sampleScale,
      label: `scale, concurrency ${c}`,
      p99,
    })
    const lines = CASES.map(([store, kind, label]) => {
      const s = `${store}Small${kind}` as Name
      const l = `${store}Large${kind}` as Name
      const opsRatio = median(figures[l].map((v, i) => v / (figures[s][i] as number)))
      const p99s = p99[s] as number[]
      const p99l = p99[l] as number[]
      const p99Ratio = median(p99l.map((v, i) => v / (p99s[i] as number)))
      const pass = opsRatio >= 1 - WITHIN && p99Ratio <= 1 + WITHIN
      // Judged at concurrency 1, like every goal on a floor; concurrency 64 is shown for information.
      if (c === 1) {
        run.goal(
          `${label} with ${count(large)} retained within 15% of ${count(small)} (ops ratio >= 0.85, p99 ratio <= 1.15), concurrency 1`,
          `ops ${ratioText(opsRatio)}, p99 ${ratioText(p99Ratio)}`,
          pass,
        )
      }
      return [
        label,
        opsFmt.format(median(figures[s])),
        opsFmt.format(median(figures[l])),
        ratioText(opsRatio),
        median(p99s).toFixed(3),
        median(p99l).toFixed(3),
        ratioText(p99Ratio),
        c === 1 ? (pass ? 'PASS' : 'FAIL') : `(${pass ? 'within' : 'not within'} 15%; judged at c=1)`,
      ]
    })
    const how = c === 1 ? 'sequential awaits' : `batches of ${c}; latency from the start of the batch`
    console.log(`\nconcurrency ${c} (${how}): ${count(large)} retained records vs ${count(small)}`)
    console.log(formatTable(header, lines))
  }
  for (const size of ['Small', 'Large'] as const) {
    console.log(await pgBlocksPerDuplicate(run, `scale_${count(sizes[size]).toLowerCase()}`, sizes[size]))
  }
  const after: string[] = []
  for (const size of ['Small', 'Large'] as const) {
    const priv = await servers.privateRedis(size === 'Large' ? 0 : 1)
    const table = `"${run.sqlName}"."scale_${count(sizes[size]).toLowerCase()}"`
    const rows = (await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0] as { n: string }
    after.push(
      `${count(sizes[size])} store: redis ${opsFmt.format(await priv.client.dbsize())}, postgres ${opsFmt.format(Number(rows.n))}`,
    )
    await priv.client.flushall()
  }
  console.log(
    `records at the end (new keys add to both sizes alike; on Redis each sample's are deleted before the next): ${after.join('; ')}`,
  )
}
