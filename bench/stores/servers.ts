// Connections to the servers, opened on first use and closed at the end of the run, and the lines
// that say which servers and drivers the figures come from.

import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { type PrivateRedis, startPrivateRedis } from './private-redis.js'
import { type BenchRun, SERVERS } from './run.js'

const require = createRequire(import.meta.url)

/** A package's version from its package.json, found on the resolution paths (some export no ./package.json). */
export function versionOf(pkg: string): string {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const file = join(dir, pkg, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  }
  return 'unknown'
}

export class Servers {
  readonly #run: BenchRun
  #redis: Redis | undefined
  #pg: pg.Pool | undefined
  #mysql: mysql.Pool | undefined
  readonly #private = new Map<number, Promise<PrivateRedis>>()

  constructor(run: BenchRun) {
    this.#run = run
  }

  /** The shared Redis, one ioredis connection (Idem's stores and the raw floors share it). */
  redis(): Redis {
    if (this.#redis === undefined) {
      const client = new Redis({ ...SERVERS.redis, maxRetriesPerRequest: 2 })
      client.on('error', () => {})
      this.#redis = client
      this.#run.onCleanup('shared Redis', async () => {
        await deleteKeys(client, `${this.#run.redisPrefix}*`)
        await client.quit()
      })
    }
    return this.#redis
  }

  /** Delete this run's keys from the shared Redis (between sections, so that they never pile up). */
  async tidyRedis(): Promise<void> {
    if (this.#redis !== undefined) await deleteKeys(this.#redis, `${this.#run.redisPrefix}*`)
  }

  pg(): pg.Pool {
    if (this.#pg === undefined) {
      const pool = new pg.Pool({ connectionString: SERVERS.pgUrl, max: this.#run.settings.poolSize })
      pool.on('error', () => {})
      this.#pg = pool
      this.#run.onCleanup('PostgreSQL', async () => {
        await pool.query(`DROP SCHEMA IF EXISTS "${this.#run.sqlName}" CASCADE`)
        await pool.end()
      })
    }
    return this.#pg
  }

  /** Tables are dropped by whoever creates them (`run.onCleanup`); this only ends the pool. */
  mysql(): mysql.Pool {
    if (this.#mysql === undefined) {
      const pool = mysql.createPool({ uri: SERVERS.mysqlUrl, connectionLimit: this.#run.settings.poolSize })
      this.#mysql = pool
      this.#run.onCleanup('MariaDB pool', () => pool.end())
    }
    return this.#mysql
  }

  /** One MariaDB connection of its own (for session counters), ended at cleanup. */
  async mysqlConnection(): Promise<mysql.Connection> {
    const connection = await mysql.createConnection({ uri: SERVERS.mysqlUrl })
    this.#run.onCleanup('MariaDB connection', () => connection.end())
    return connection
  }

  /** Private Redis number `n` (0, 1, …) on a spare port from 7301 + 10 n; FLUSHALL is yours to call. */
  privateRedis(n: number): Promise<PrivateRedis> {
    let started = this.#private.get(n)
    if (started === undefined) {
      started = startPrivateRedis(7301 + 10 * n)
      this.#private.set(n, started)
      this.#run.onCleanup(`private Redis ${n}`, async () => (await started)?.stop())
    }
    return started
  }

  async describeRedis(client: Redis, where: string): Promise<string> {
    const info = await client.info('server')
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?'
    const config = async (name: string) => ((await client.config('GET', name)) as string[])[1] ?? '?'
    return (
      `redis (${where}): Redis ${version} at 127.0.0.1:${client.options.port}, appendonly=${await config('appendonly')} ` +
      `save='${await config('save')}' io-threads=${await config('io-threads')}`
    )
  }

  async describePg(): Promise<string> {
    const { rows } = await this.pg().query(
      `SELECT current_setting('server_version') AS version, current_setting('shared_buffers') AS sb,
        current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fsync,
        current_setting('autovacuum') AS av`,
    )
    const r = rows[0] as Record<string, string>
    return (
      `postgres: PostgreSQL ${r.version} at ${new URL(SERVERS.pgUrl).host}, shared_buffers=${r.sb} ` +
      `synchronous_commit=${r.sc} fsync=${r.fsync} autovacuum=${r.av}; pg ${versionOf('pg')} Pool of ${this.#run.settings.poolSize}`
    )
  }

  async describeMysql(): Promise<string> {
    const [rows] = await this.mysql().query(
      'SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS flush, @@innodb_buffer_pool_size AS pool, @@log_bin AS binlog',
    )
    const r = (rows as Record<string, string | number>[])[0] as Record<string, string | number>
    return (
      `mariadb: ${r.version} at ${new URL(SERVERS.mysqlUrl).host}, innodb_flush_log_at_trx_commit=${r.flush} ` +
      `innodb_buffer_pool_size=${Math.round(Number(r.pool) / 2 ** 20)}MiB log_bin=${r.binlog}; ` +
      `mysql2 ${versionOf('mysql2')} pool of ${this.#run.settings.poolSize}`
    )
  }
}

/** UNLINK every key matching `pattern`, a SCAN page at a time. */
export async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 5000)
    cursor = next
    if (keys.length > 0) deleted += await client.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}
