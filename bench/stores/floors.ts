// The floors: each server store's raw primitive, measured beside the store in the same run, on the
// same connection (or pool) and on rows or values of the same shape and size as the store's.
//
//   Redis new key     SET k <claim> PX ttl NX (must answer OK), then SET k <completed record> PX ttl
//   Redis duplicate   GET k (of the very records the store replays)
//   Redis new key,    the new-key floor plus, at their least, the guarantees RedisStore keeps: the
//   fenced            payload's fingerprint (one SHA-256 of its JSON), an owner token in the claim
//                     (SET NX GET), and a completion that lands only while the claim still holds
//                     that token (a script, the calls of one tick in one, as RedisStore batches)
//   SQL new key       INSERT (10 columns) ON CONFLICT (id) DO NOTHING / INSERT IGNORE (must insert 1
//                     row), then UPDATE t SET state = 'completed', result = ? WHERE id = ?
//   SQL duplicate     SELECT state, fingerprint, result, expires_at FROM t WHERE id = ?

import { hash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { FencedCompletions } from '../lib/fenced-completions.js'
import { LEASE_MS } from '../lib/fixtures.js'
import type { Workload } from '../lib/measure.js'

/**
 * Strings as long as RedisStore's records (redis-scripts.ts): a claim (with a randomUUID token)
 * and a completed record holding `result`. Only their size matters to the floor.
 */
export function redisRecordValues(fingerprint: string, result: string): { claim: string; done: string } {
  const now = Date.now()
  const head = `${fingerprint.length},${fingerprint}`
  return {
    claim: `q${LEASE_MS},${SHARED_KEEP_MS},${head}${randomUUID()}`,
    done: `c1,${now},${now},,${head}${result}`,
  }
}

/** The retention the benchmarks give records (10 minutes), as a claim spells it. */
const SHARED_KEEP_MS = 600_000

export function redisNewFloor(
  redis: Redis,
  keyOf: (n: number) => string,
  values: { claim: string; done: string },
  ttlMs: number,
): Workload {
  let n = 0
  return {
    sampleOps: 1_000,
    op: async () => {
      const key = keyOf(n++)
      if ((await redis.set(key, values.claim, 'PX', ttlMs, 'NX')) !== 'OK') {
        throw new Error(`bench: the raw claim of ${key} found a key`)
      }
      await redis.set(key, values.done, 'PX', ttlMs)
    },
  }
}

/**
 * The new-key floor with the guarantees at their least (the file's header): what it reaches of
 * `redisNewFloor` is what fingerprint, owner token and fencing cost alone, whoever implements them.
 */
export function redisFencedNewFloor(
  redis: Redis,
  keyOf: (n: number) => string,
  payload: unknown,
  result: string,
  ttlMs: number,
): Workload {
  const completions = new FencedCompletions(redis, ttlMs)
  let n = 0
  return {
    sampleOps: 1_000,
    op: async () => {
      const key = keyOf(n++)
      const fingerprint = hash('sha256', JSON.stringify(payload), 'base64url')
      const token = randomUUID()
      if ((await redis.set(key, `p${fingerprint}${token}`, 'PX', ttlMs, 'NX', 'GET')) !== null) {
        throw new Error(`bench: the fenced claim of ${key} found a key`)
      }
      if (!(await completions.complete(key, token, `c${fingerprint}${result}`))) {
        throw new Error(`bench: the fenced completion of ${key} found another claim`)
      }
    },
  }
}

export function redisGetFloor(redis: Redis, pick: () => string): Workload {
  return {
    sampleOps: 1_000,
    op: async () => {
      const key = pick()
      if ((await redis.get(key)) === null) throw new Error(`bench: the raw read found no ${key}`)
    },
  }
}

const COLUMNS = 'id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at'

/** `table` is schema-qualified and quoted, e.g. `"idem_bench_1"."floor_records"` (the store's own DDL). */
export function pgNewFloor(
  pool: pg.Pool,
  table: string,
  idOf: (n: number) => string,
  fingerprint: string,
  result: Buffer,
  ttlMs: number,
): Workload {
  const insert = `INSERT INTO ${table} (${COLUMNS})
    VALUES ($1, 'in_progress', $2, $3, $4, 1, NULL, $5, $5, $6) ON CONFLICT (id) DO NOTHING`
  const update = `UPDATE ${table} SET state = 'completed', result = $2 WHERE id = $1`
  const token = randomUUID()
  let n = 0
  return {
    sampleOps: 200,
    op: async () => {
      const id = idOf(n++)
      const now = Date.now()
      const claimed = await pool.query(insert, [id, fingerprint, token, now + LEASE_MS, now, now + ttlMs])
      if (claimed.rowCount !== 1) throw new Error(`bench: the raw claim of ${id} inserted nothing`)
      await pool.query(update, [id, result])
    },
  }
}

export function pgSelectFloor(pool: pg.Pool, table: string, pick: () => string): Workload {
  const select = `SELECT state, fingerprint, result, expires_at FROM ${table} WHERE id = $1`
  return {
    sampleOps: 500,
    op: async () => {
      const id = pick()
      if ((await pool.query(select, [id])).rows.length !== 1) throw new Error(`bench: the raw read found no ${id}`)
    },
  }
}

/** `table` unquoted; ids go as bytes, as MysqlStore sends them (its id column is VARBINARY). */
export function mysqlNewFloor(
  pool: mysql.Pool,
  table: string,
  idOf: (n: number) => string,
  fingerprint: string,
  result: Buffer,
  ttlMs: number,
): Workload {
  const insert = `INSERT IGNORE INTO \`${table}\` (${COLUMNS})
    VALUES (?, 'in_progress', ?, ?, ?, 1, NULL, ?, ?, ?)`
  const update = `UPDATE \`${table}\` SET state = 'completed', result = ? WHERE id = ?`
  const fp = Buffer.from(fingerprint, 'utf8')
  const token = Buffer.from(randomUUID(), 'utf8')
  let n = 0
  return {
    sampleOps: 200,
    op: async () => {
      const id = Buffer.from(idOf(n++), 'utf8')
      const now = Date.now()
      const [claimed] = await pool.query({
        sql: insert,
        values: [id, fp, token, now + LEASE_MS, now, now, now + ttlMs],
      })
      if ((claimed as mysql.ResultSetHeader).affectedRows !== 1)
        throw new Error('bench: the raw claim inserted nothing')
      await pool.query({ sql: update, values: [result, id] })
    },
  }
}

export function mysqlSelectFloor(pool: mysql.Pool, table: string, pick: () => string): Workload {
  const select = `SELECT state, fingerprint, result, expires_at FROM \`${table}\` WHERE id = ?`
  return {
    sampleOps: 500,
    op: async () => {
      const id = pick()
      const [rows] = await pool.query({ sql: select, values: [Buffer.from(id, 'utf8')] })
      if ((rows as unknown[]).length !== 1) throw new Error(`bench: the raw read found no ${id}`)
    },
  }
}
