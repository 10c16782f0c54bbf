// Section "batches": a consumer's batch of 100 new messages claimed with one beginMany and stored
// with one completeMany, against the per-message floor (the raw claim + store, message after
// message), in messages per second. Ours fingerprints every message and encodes every result.

import { fingerprintOf } from '../../src/core/fingerprint.js'
import { type IdempotencyStore, recordId } from '../../src/index.js'
import { MysqlStore, mysqlDropSchema, mysqlTableSchema } from '../../src/stores/mysql/index.js'
import { PostgresStore } from '../../src/stores/postgres/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { LEASE_MS, PAYLOAD, SCOPE, VALUE } from '../lib/fixtures.js'
import { interleavedRounds } from '../lib/interleave.js'
import type { Workload } from '../lib/measure.js'
import { printTable, type Row, warmUp } from './compare.js'
import { mysqlNewFloor, pgNewFloor, redisNewFloor, redisRecordValues } from './floors.js'
import { type BenchRun, SHARED_TTL_MS } from './run.js'
import type { Servers } from './servers.js'

type Store = 'redis' | 'pg' | 'mysql'
type Name = `${Store}Batch` | `${Store}Floor` | `${Store}Floor64`

const FLOOR_TEXT: Record<Store, string> = {
  redis: 'SET NX PX + SET',
  pg: 'INSERT ON CONFLICT + UPDATE',
  mysql: 'INSERT IGNORE + UPDATE',
}
const LABEL: Record<Store, string> = { redis: 'redis', pg: 'postgres', mysql: 'mariadb' }
const GOAL_NAME: Record<Store, string> = { redis: 'Redis', pg: 'PostgreSQL', mysql: 'MariaDB' }

/** beginMany + completeMany of `size` new keys per op; fails unless every item was claimed and stored. */
function batchWorkload(store: IdempotencyStore, size: number, prefix: string, ttlMs: number): Workload {
  let n = 0
  return {
    sampleOps: 10,
    op: async () => {
      const items = Array.from({ length: size }, () => ({
        id: recordId(SCOPE, `${prefix}${n++}`),
        fingerprint: fingerprintOf(PAYLOAD),
      }))
      const begun = await store.beginMany(items, LEASE_MS, ttlMs)
      const done = items.map((item, i) => {
        const b = begun[i]
        if (b?.outcome !== 'acquired') throw new Error(`bench: batch item ${item.id} was not acquired`)
        return { id: item.id, token: b.token, result: JSON.stringify({ v: VALUE }) }
      })
      const outcomes = await store.completeMany(done, ttlMs)
      if (outcomes.some((o) => o !== 'completed')) throw new Error('bench: a batch item was not completed')
    },
  }
}

/**
 * MariaDB's batch figures explained: commits per beginMany and per completeMany of one batch, from
 * SHOW SESSION STATUS on a connection of the benchmark's own (other sessions do not count), with
 * innodb_flush_log_at_trx_commit=1 each commit waits for a redo log flush.
 */
async function mysqlCommitsPerBatch(run: BenchRun, servers: Servers, size: number, ttlMs: number): Promise<void> {
  const connection = await servers.mysqlConnection()
  const table = `${run.sqlName}_batch`
  const store = new MysqlStore({ client: connection, table })
  const counters = async (): Promise<Record<string, number>> => {
    const [rows] = await connection.query(
      "SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Handler_commit', 'Com_call_procedure')",
    )
    return Object.fromEntries(
      (rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name, Number(r.Value)]),
    )
  }
  const batches = run.settings.quick ? 2 : 10
  const fingerprint = fingerprintOf(PAYLOAD)
  const result = JSON.stringify({ v: VALUE })
  let n = 0
  const spent = { begin: 0, complete: 0 }
  const diff = { begin: {} as Record<string, number>, complete: {} as Record<string, number> }
  const add = (into: Record<string, number>, a: Record<string, number>, b: Record<string, number>) => {
    for (const [k, v] of Object.entries(b)) into[k] = (into[k] ?? 0) + v - (a[k] ?? 0)
  }
  for (let i = 0; i < batches; i++) {
    const items = Array.from({ length: size }, () => ({ id: recordId(SCOPE, `c${n++}`), fingerprint }))
    const c0 = await counters()
    let t = performance.now()
    const begun = await store.beginMany(items, LEASE_MS, ttlMs)
    spent.begin += performance.now() - t
    const c1 = await counters()
    t = performance.now()
    await store.completeMany(
      items.map((item, j) => ({ id: item.id, token: (begun[j] as { token: string }).token, result })),
      ttlMs,
    )
    spent.complete += performance.now() - t
    const c2 = await counters()
    add(diff.begin, c0, c1)
    add(diff.complete, c1, c2)
  }
  // SHOW STATUS itself counts as nothing here; each counter is per batch, averaged over the batches.
  const text = (d: Record<string, number>) =>
    Object.entries(d)
      .map(([k, v]) => `${k} ${(v / batches).toFixed(0)}`)
      .join(', ')
  console.log(
    `mariadb, one batch of ${size} on a connection of its own (${batches} batches): beginMany ${(spent.begin / batches).toFixed(1)} ms ` +
      `(${text(diff.begin)}), completeMany ${(spent.complete / batches).toFixed(1)} ms (${text(diff.complete)})`,
  )
}

export async function batchesSection(run: BenchRun, servers: Servers, withMysql: boolean): Promise<void> {
  const { batchSize, concurrency, c1, sampleScale } = run.settings
  const ttl = SHARED_TTL_MS
  const fingerprint = fingerprintOf(PAYLOAD)
  const stored = JSON.stringify({ v: VALUE })
  const storedBytes = Buffer.from(stored, 'utf8')
  const redis = servers.redis()
  const P = `${run.redisPrefix}:batch`
  const pool = servers.pg()
  const schema = run.sqlName
  const pgStore = new PostgresStore({ client: pool, schema, table: 'batch_records' })
  const pgFloor = new PostgresStore({ client: pool, schema, table: 'batch_floor' })
  for (const s of [pgStore, pgFloor]) await s.ensureSchema()

  const stores: Store[] = ['redis', 'pg']
  const workloads: Partial<Record<Name, Workload>> = {
    redisBatch: batchWorkload(new RedisStore({ client: redis, prefix: `${P}:` }), batchSize, 'b', ttl),
    redisFloor: redisNewFloor(redis, (n) => `${P}:floor:{5:bench:f${n}}`, redisRecordValues(fingerprint, stored), ttl),
    redisFloor64: redisNewFloor(
      redis,
      (n) => `${P}:floor:{5:bench:g${n}}`,
      redisRecordValues(fingerprint, stored),
      ttl,
    ),
    pgBatch: batchWorkload(pgStore, batchSize, 'b', ttl),
    pgFloor: pgNewFloor(pool, pgFloor.names.qualifiedTable, (n) => `5:bench:f${n}`, fingerprint, storedBytes, ttl),
    pgFloor64: pgNewFloor(pool, pgFloor.names.qualifiedTable, (n) => `5:bench:g${n}`, fingerprint, storedBytes, ttl),
  }
  if (withMysql) {
    const mysqlPool = servers.mysql()
    const table = `${run.sqlName}_batch`
    const floorTable = `${run.sqlName}_bfloor`
    run.onCleanup('MariaDB batch tables', async () => {
      for (const sql of [...mysqlDropSchema({ table }), `DROP TABLE IF EXISTS \`${floorTable}\``])
        await mysqlPool.query(sql)
    })
    const mysqlStore = new MysqlStore({ client: mysqlPool, table })
    await mysqlStore.ensureSchema()
    await mysqlPool.query(mysqlTableSchema(floorTable))
    stores.push('mysql')
    workloads.mysqlBatch = batchWorkload(mysqlStore, batchSize, 'b', ttl)
    workloads.mysqlFloor = mysqlNewFloor(mysqlPool, floorTable, (n) => `5:bench:f${n}`, fingerprint, storedBytes, ttl)
    workloads.mysqlFloor64 = mysqlNewFloor(mysqlPool, floorTable, (n) => `5:bench:g${n}`, fingerprint, storedBytes, ttl)
  } else {
    console.log('TODO(mysql): MysqlStore batches not measured (--no-mysql)')
  }

  const order = stores.flatMap((s): Name[] => [`${s}Batch`, `${s}Floor`, `${s}Floor64`])
  const concurrencyOf: Partial<Record<Name, number>> = {}
  const scale: Partial<Record<Name, number>> = {}
  for (const s of stores) {
    concurrencyOf[`${s}Floor64`] = concurrency
    scale[`${s}Batch`] = batchSize
  }
  const all = workloads as Record<Name, Workload>
  await warmUp(run, all, order, [1])
  const figures = await interleavedRounds(all, order, {
    ...c1,
    concurrency: 1,
    concurrencyOf,
    sampleScale,
    label: 'batches',
  })

  const rows: Row<Name>[] = stores.flatMap((s): Row<Name>[] => [
    {
      label: `${LABEL[s]}: batch of ${batchSize} vs ${batchSize} x (${FLOOR_TEXT[s]})`,
      ours: `${s}Batch`,
      floor: `${s}Floor`,
      goal: 5,
      goalText: `${GOAL_NAME[s]} batches of ${batchSize} >= 5x the per-message floor`,
    },
    {
      label: `${LABEL[s]}: batch of ${batchSize} vs the same floor at concurrency ${concurrency}`,
      ours: `${s}Batch`,
      floor: `${s}Floor64`,
    },
  ])
  if (withMysql) await mysqlCommitsPerBatch(run, servers, batchSize, ttl)
  printTable(
    run,
    `messages per second: one batch at a time (beginMany then completeMany) vs the floor one message at a time; informative: vs the floor ${concurrency} messages at a time`,
    rows,
    figures,
    1,
    { ours: 'batch msg/s', floor: 'floor msg/s' },
    scale,
  )
}
