// Section "memory": bytes per retained completed record with a ~60-byte result. Redis on a private
// server (MEMORY USAGE of one record, and used_memory growth over N records, ours and the peers');
// PostgreSQL and MariaDB as table + index bytes per row after N records written by the store.

import type { Redis } from 'ioredis'
import { Idempotency } from '../../src/index.js'
import { MysqlStore, mysqlDropSchema } from '../../src/stores/mysql/index.js'
import { PostgresStore } from '../../src/stores/postgres/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { PAYLOAD, produce, SCOPE, TTL_MS, VALUE } from '../lib/fixtures.js'
import { formatTable, opsFmt } from '../lib/report.js'
import { fillCompleted } from './fill.js'
import { nodeIdempotency, type Peer, powertools } from './peers.js'
import type { BenchRun } from './run.js'
import type { Servers } from './servers.js'

async function usedMemory(client: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1])
}

async function onlyKey(client: Redis): Promise<string> {
  const keys = await client.keys('*')
  if (keys.length !== 1) throw new Error(`bench: expected one key, found ${keys.length}`)
  return keys[0] as string
}

export async function memorySection(run: BenchRun, servers: Servers, withMysql: boolean): Promise<void> {
  const n = run.settings.memoryRecords
  const result = JSON.stringify({ v: VALUE })
  const lines: string[][] = []
  const add = (what: string, bytes: number, detail: string) => lines.push([what, bytes.toFixed(0), detail])

  // ---- Redis, a private server flushed between measurements --------------------------------------
  const priv = await servers.privateRedis(0)
  const client = priv.client
  console.log(await servers.describeRedis(client, 'private, child process'))
  await client.flushall()
  const store = new RedisStore({ client }) // default prefix idem:
  const idem = new Idempotency({ store, scope: SCOPE, ttl: TTL_MS })
  await idem.run({ key: 'order-2024-000042-57', payload: PAYLOAD }, produce)
  const key = await onlyKey(client)
  const one = Number(await client.memory('USAGE', key, 'SAMPLES', 0))
  add(`redis: one completed record (MEMORY USAGE)`, one, `key ${key}, result ${result.length} bytes, fingerprint 43`)
  const peerUrl = `redis://127.0.0.1:${priv.port}`
  const peers: [string, () => Promise<Peer>][] = [
    ['Powertools', () => powertools(peerUrl, 'idem', TTL_MS)],
    ['@node-idempotency/core', () => nodeIdempotency(peerUrl, 'idem', TTL_MS)],
  ]
  for (const [name, make] of peers) {
    await client.flushall()
    const peer = await make()
    await peer.run('order-2024-000042-57', produce)
    const peerKey = await onlyKey(client)
    add(
      `redis: ${name}'s completed record (MEMORY USAGE)`,
      Number(await client.memory('USAGE', peerKey, 'SAMPLES', 0)),
      `key ${peerKey}, the same value stored`,
    )
    await client.flushall()
    const before = await usedMemory(client)
    for (let i = 0; i < n; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, j) => peer.run(`k${i + j}`, produce)))
    }
    const grown = (await usedMemory(client)) - before
    add(
      `redis: ${name}, used_memory growth / record`,
      grown / n,
      `${opsFmt.format(n)} records written through the library, ${opsFmt.format(await client.dbsize())} keys`,
    )
    await peer.close()
  }
  await client.flushall()
  const before = await usedMemory(client)
  await fillCompleted(store, { prefix: 'k', to: n, ttlMs: TTL_MS })
  const grown = (await usedMemory(client)) - before
  const keys = await client.dbsize()
  if (keys !== n) throw new Error(`bench: expected ${n} records, found ${keys}`)
  // Same format as run() writes: the record of a filled key replays like any other.
  const replay = await idem.run({ key: 'k7', payload: PAYLOAD }, produce)
  if (replay.status !== 'replayed') throw new Error('bench: a filled record did not replay')
  add(
    'redis: Idem, used_memory growth / record',
    grown / n,
    `${opsFmt.format(n)} records via beginMany/completeMany (main + expires dicts included)`,
  )
  await client.flushall()

  // ---- PostgreSQL -----------------------------------------------------------------------------------
  const pool = servers.pg()
  const pgStore = new PostgresStore({ client: pool, schema: run.sqlName, table: 'memory_records' })
  await pgStore.ensureSchema()
  await fillCompleted(pgStore, { prefix: 'k', to: n, ttlMs: TTL_MS, inFlight: 4 })
  const t = pgStore.names.qualifiedTable
  const pgSizes = async () => {
    const { rows } = await pool.query(
      `SELECT pg_total_relation_size('${t}') AS total, pg_relation_size('${t}') AS heap,
        pg_indexes_size('${t}') AS indexes, (SELECT count(*) FROM ${t}) AS n`,
    )
    const r = rows[0] as Record<string, string>
    return { total: Number(r.total), heap: Number(r.heap), indexes: Number(r.indexes), rows: Number(r.n) }
  }
  const written = await pgSizes()
  const detail = (s: { heap: number; indexes: number; rows: number }) =>
    `heap ${(s.heap / s.rows).toFixed(0)} + indexes ${(s.indexes / s.rows).toFixed(0)} (pkey, expires_at) per row, ${opsFmt.format(s.rows)} rows`
  add(
    'postgres: pg_total_relation_size / row, as written',
    written.total / written.rows,
    `${detail(written)}; each row inserted then updated once, dead versions not vacuumed`,
  )
  await pool.query(`VACUUM FULL ${t}`)
  const compact = await pgSizes()
  add('postgres: the same after VACUUM FULL', compact.total / compact.rows, detail(compact))

  // ---- MariaDB --------------------------------------------------------------------------------------
  if (withMysql) {
    const mysqlPool = servers.mysql()
    const table = `${run.sqlName}_mem`
    run.onCleanup('MariaDB memory table', async () => {
      for (const sql of mysqlDropSchema({ table })) await mysqlPool.query(sql)
    })
    const mysqlStore = new MysqlStore({ client: mysqlPool, table })
    await mysqlStore.ensureSchema()
    await fillCompleted(mysqlStore, { prefix: 'k', to: n, ttlMs: TTL_MS, inFlight: 4 })
    const mysqlSizes = async () => {
      await mysqlPool.query(`ANALYZE TABLE \`${table}\``)
      const [rows] = await mysqlPool.query(
        `SELECT data_length AS d, index_length AS i, (SELECT count(*) FROM \`${table}\`) AS n
         FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`,
        [table],
      )
      const r = (rows as Record<string, number>[])[0] as Record<string, number>
      return { data: Number(r.d), index: Number(r.i), rows: Number(r.n) }
    }
    const m = await mysqlSizes()
    const mdetail = (s: { data: number; index: number; rows: number }) =>
      `data ${(s.data / s.rows).toFixed(0)} (clustered pkey) + index ${(s.index / s.rows).toFixed(0)} (expires_at) per row, ${opsFmt.format(s.rows)} rows`
    add(
      'mariadb: data_length + index_length / row, as written',
      (m.data + m.index) / m.rows,
      `${mdetail(m)}; after ANALYZE TABLE`,
    )
    await mysqlPool.query(`OPTIMIZE TABLE \`${table}\``)
    const mo = await mysqlSizes()
    add('mariadb: the same after OPTIMIZE TABLE', (mo.data + mo.index) / mo.rows, mdetail(mo))
  } else {
    console.log('TODO(mysql): MysqlStore bytes per row not measured (--no-mysql)')
  }

  console.log(`\nbytes per retained completed record (result ${result.length} bytes: ${result})`)
  console.log(formatTable(['case', 'bytes/record', 'detail'], lines))
}
