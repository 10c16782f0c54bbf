// Shared by the PostgreSQL test files: the server's URL, fresh connections and isolated schemas.

import pg from 'pg'
import { PostgresStore, type PostgresStoreOptions } from '../../../../src/stores/postgres/postgres-store.js'
import { isolatedName, SERVICES } from '../../../services.js'

export const PG_URL = SERVICES.PostgreSQL.url

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A pool that ignores errors of idle clients (a terminated backend), as pg's docs advise. */
export function newPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: PG_URL, max })
  pool.on('error', () => {})
  return pool
}

export async function newClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL })
  client.on('error', () => {})
  await client.connect()
  return client
}

/** A store in a schema of its own, created now; `drop()` removes the schema and all in it. */
export async function isolatedStore(
  pool: pg.Pool,
  options: Omit<PostgresStoreOptions, 'pool' | 'schema'> = {},
): Promise<{ store: PostgresStore; schema: string; drop: () => Promise<void> }> {
  const schema = isolatedName('idem_pg')
  const store = new PostgresStore({ client: pool, schema, ...options })
  await store.ensureSchema()
  return { store, schema, drop: () => dropSchema(pool, schema) }
}

export async function dropSchema(pool: pg.Pool | pg.Client, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
}

/** Wait until some backend is blocked on a lock held by `blockerPid`; resolve to that backend's pid. */
export async function blockedBy(observer: pg.Pool | pg.Client, blockerPid: number, timeoutMs = 5000): Promise<number> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const { rows } = await observer.query(
      'SELECT pid FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid)) ORDER BY pid LIMIT 1',
      [blockerPid],
    )
    if (rows.length === 1) return rows[0].pid as number
    if (Date.now() > until) throw new Error(`no backend got blocked by ${blockerPid} within ${timeoutMs} ms`)
    await sleep(10)
  }
}

export async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
}
