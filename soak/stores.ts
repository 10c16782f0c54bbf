// The stores a soak run drives, on the shared local servers, each under names of this run only:
// RedisStore under its own key prefix (records expire natively, by key expiry), PostgresStore in
// its own schema (expired rows stay until swept, so this run sweeps on a timer, as docs/postgres.md
// asks). Each says how many records it holds now, and removes everything it made on close.

import { Redis } from 'ioredis'
import pg from 'pg'
import { Idempotency } from '../src/index.js'
import { PostgresStore } from '../src/stores/postgres/index.js'
import { RedisStore } from '../src/stores/redis/index.js'
import type { Errors } from './ledger.js'

export const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
/**
 * The logical database of every soak key (records and streams). Counting the records is a SCAN
 * of the whole database, every sample: in a database of its own it reads this run's keys only,
 * not the millions another program on the shared server may hold in database 0.
 */
export const REDIS_DB = Number(process.env.IDEM_SOAK_REDIS_DB ?? 9)

/**
 * A client of the soak's database that gives up on a command rather than retry forever. The
 * store's batches its commands per tick (as the benchmarks run it); the consumer's does not, since
 * its duplicate holds a blocking XREADGROUP.
 */
export const redisClient = (options: { autoPipelining: boolean }): Redis =>
  new Redis(REDIS_URL, { db: REDIS_DB, maxRetriesPerRequest: 1, enableAutoPipelining: options.autoPipelining })
export const PG_URL = process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export type StoreName = 'redis' | 'postgres'

export interface SoakStore {
  name: StoreName
  idem: Idempotency
  /** Records held now: keys under the prefix, rows of the table (expired but unswept ones too). */
  size(): Promise<number>
  /** How long a record may outlive its ttl before it stops counting in `size()`, in seconds. */
  expiryLagS: number
  close(): Promise<void>
}

export interface StoreOptions {
  runId: string
  ttlS: number
  errors: Errors
}

function idemOver(store: RedisStore | PostgresStore, options: StoreOptions, name: StoreName): Idempotency {
  const idem = new Idempotency({ store, ttl: options.ttlS * 1000 })
  idem.on('store_error', (event) => options.errors.add(`${name} store ${event.operation}`, event.error))
  return idem
}

/**
 * Redis removes an expired key when it is touched or when its active expiry cycle samples it
 * (10 times a second); SCAN, which `size()` uses, never returns an expired key. One second of lag
 * is ample.
 */
export async function openRedisStore(options: StoreOptions): Promise<SoakStore> {
  const client = redisClient({ autoPipelining: true })
  const prefix = `soak:${options.runId}:`
  const store = new RedisStore({ client, prefix })
  const keys = async (each: (batch: string[]) => Promise<unknown>) => {
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000)
      cursor = next
      await each(batch)
    } while (cursor !== '0')
  }
  return {
    name: 'redis',
    idem: idemOver(store, options, 'redis'),
    expiryLagS: 1,
    async size() {
      let count = 0
      await keys(async (batch) => {
        count += batch.length
      })
      return count
    },
    async close() {
      await store.close()
      await keys((batch) => (batch.length > 0 ? client.unlink(...batch) : Promise.resolve()))
      await client.quit()
    },
  }
}

export interface PostgresStoreOptions extends StoreOptions {
  /** How often expired rows are swept. */
  sweepEveryS: number
  /** False only for the self-test that shows the size check fails without a sweep. */
  sweep: boolean
}

/** Rows deleted per `sweep()` call; the sweeper calls again while a call fills its limit. */
const SWEEP_LIMIT = 5000

export async function openPostgresStore(options: PostgresStoreOptions): Promise<SoakStore> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 8 })
  pool.on('error', (error) => options.errors.add('postgres idle client', error))
  const schema = `soak_${options.runId}`
  const store = new PostgresStore({ client: pool, schema })
  try {
    await store.ensureSchema()
  } catch (error) {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
    throw error
  }
  let sweeping: Promise<void> = Promise.resolve()
  const sweepAll = async () => {
    while ((await store.sweep(SWEEP_LIMIT)) === SWEEP_LIMIT) {}
  }
  const timer = options.sweep
    ? setInterval(() => {
        sweeping = sweepAll().catch((error) => options.errors.add('postgres sweep', error))
      }, options.sweepEveryS * 1000)
    : undefined
  return {
    name: 'postgres',
    idem: idemOver(store, options, 'postgres'),
    // A row expires, waits for the next sweep, and the sweep itself takes a moment.
    expiryLagS: options.sweepEveryS + 1,
    async size() {
      const result = await pool.query(`SELECT count(*)::int AS n FROM "${schema}"."idem_records"`)
      return (result.rows[0] as { n: number }).n
    },
    async close() {
      if (timer !== undefined) clearInterval(timer)
      await sweeping
      await store.close()
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    },
  }
}
