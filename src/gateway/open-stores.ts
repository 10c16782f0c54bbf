// The gateway's stores, opened from its configuration: for each, the driver's client made from the
// URL, the Idem store over it (schema created), a circuit breaker in front, and the backend its
// rate limits count in. Every store is reachable once openStores resolves, or it rejects naming
// the store and the server; close() closes the stores, then the clients this file made.

import type { Redis } from 'ioredis'
import type { Pool as MysqlPool } from 'mysql2/promise'
import type { Pool as PgPool } from 'pg'
import type { IdempotencyStore } from '../contract/types.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { BreakerStore } from './breaker-store.js'
import type { GatewayConfig, StoreConfig } from './config/schema.js'
import type { RateLimitBackend } from './rate-limiter.js'

export interface OpenStore {
  name: string
  type: StoreConfig['type']
  store: BreakerStore
  backend: RateLimitBackend
}

export interface OpenStores {
  /** The store named `name` in the configuration; throws naming the known ones otherwise. */
  get(name: string): OpenStore
  names(): string[]
  /** Close every store and the clients made for them; safe to call twice. */
  close(): Promise<void>
}

/** How long a server may take to accept the first connection, and a Redis command to answer. */
const CONNECT_TIMEOUT_MS = 5_000
const COMMAND_TIMEOUT_MS = 5_000

/** One store as opened: the Idem store, its rate-limit backend, and how to close what was made for it. */
interface Opened {
  store: IdempotencyStore
  backend: RateLimitBackend
  /** Ends the driver's client (the store was given it as an instance, so it leaves it open). */
  closeClient: () => Promise<void>
}

export async function openStores(
  configs: GatewayConfig['stores'],
  breaker: GatewayConfig['breaker'],
): Promise<OpenStores> {
  const entries = Object.entries(configs)
  const settled = await Promise.allSettled(entries.map(([name, config]) => openStore(name, config)))
  const opened = new Map<string, OpenStore & { closeClient: () => Promise<void> }>()
  const failures: string[] = []
  let firstFailure: unknown
  settled.forEach((outcome, i) => {
    const [name, config] = entries[i] as [string, StoreConfig]
    if (outcome.status === 'rejected') {
      firstFailure ??= outcome.reason
      failures.push((outcome.reason as Error)?.message ?? String(outcome.reason))
      return
    }
    const { store, backend, closeClient } = outcome.value
    opened.set(name, { name, type: config.type, store: new BreakerStore(name, store, breaker), backend, closeClient })
  })
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= closeAll([...opened.values()])
    return closing
  }
  if (failures.length > 0) {
    await close()
    throw new Error(failures.length === 1 ? (failures[0] as string) : failures.join('; '), { cause: firstFailure })
  }
  return {
    get(name) {
      const store = opened.get(name)
      if (store === undefined) {
        throw new Error(`No store named "${name}" (stores: ${[...opened.keys()].join(', ') || 'none'})`)
      }
      const { closeClient: _, ...open } = store
      return open
    },
    names: () => [...opened.keys()],
    close,
  }
}

async function closeAll(stores: readonly (OpenStore & { closeClient: () => Promise<void> })[]): Promise<void> {
  const errors: unknown[] = []
  await Promise.all(
    stores.map(async ({ store, closeClient }) => {
      // The store first (it stops taking calls), then its client.
      for (const step of [() => store.close(), closeClient]) {
        try {
          await step()
        } catch (error) {
          errors.push(error)
        }
      }
    }),
  )
  if (errors.length > 0) {
    throw new AggregateError(errors, `Closing the gateway's stores failed: ${(errors[0] as Error)?.message}`)
  }
}

async function openStore(name: string, config: StoreConfig): Promise<Opened> {
  const where = `Store "${name}" (${config.type}${'url' in config ? ` at ${redacted(config.url)}` : 'path' in config ? ` at ${config.path}` : ''})`
  try {
    switch (config.type) {
      case 'memory':
        return { store: new MemoryStore(), backend: { type: 'memory' }, closeClient: async () => {} }
      case 'sqlite':
        return await openSqlite(name, config.path)
      case 'redis':
        return await openRedis(name, config.url, config.prefix)
      case 'postgres':
        return await openPostgres(name, config.url, config.table)
      case 'mysql':
        return await openMysql(name, config.url, config.table)
      default:
        throw new Error(`unknown store type ${JSON.stringify((config as { type?: unknown }).type)}`)
    }
  } catch (error) {
    if (error instanceof MissingDriverError) throw error
    throw new Error(`${where} could not be opened: ${(error as Error)?.message ?? error}`, { cause: error })
  }
}

/**
 * ioredis fails calls fast: no offline queue (a call while Redis is down fails at once instead
 * of waiting, unbounded, for a reconnect) and one retry per command. Without the offline queue a
 * call before the first connection is ready would fail too, so the client is connected (ready:
 * handshake and ready check done) before the store gets it. A Redis that is down at startup fails
 * openStores with its error; once up, ioredis reconnects on its own after any outage.
 */
async function openRedis(name: string, url: string, prefix: string | undefined): Promise<Opened> {
  const { Redis } = await importDriver(() => import('ioredis'), 'ioredis', name, 'redis')
  const { RedisStore } = await import('../stores/redis/redis-store.js')
  const client: Redis = new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: true,
    // Concurrent requests' claims and completions share one write (and one read) per event-loop tick.
    enableAutoPipelining: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // A Redis that accepts the connection but never answers fails calls too (and counts for the breaker).
    commandTimeout: COMMAND_TIMEOUT_MS,
  })
  let lastError: Error | undefined
  // Failures reach the callers of each command; without a listener ioredis would also print every
  // failed reconnect attempt.
  client.on('error', (error: Error) => {
    lastError = error
  })
  try {
    await client.connect()
  } catch (error) {
    client.disconnect()
    // connect() only says "Connection is closed."; the error event said why.
    throw lastError ?? error
  }
  const store = new RedisStore({ client, ...(prefix === undefined ? {} : { prefix }) })
  return {
    store,
    // Counters sit under the store's prefix (record keys there always start with '{').
    backend: { type: 'redis', client, prefix: `${store.prefix}rate:` },
    closeClient: async () => {
      if (client.status === 'end') return
      // quit() resolves on Redis' OK, before the socket is closed: closed means 'end'.
      const ended = new Promise<void>((resolve) => client.once('end', resolve))
      // A Redis that is down never answers QUIT (the client keeps reconnecting): cut it at once,
      // and never wait more than QUIT_TIMEOUT_MS for a polite quit either.
      if (client.status !== 'ready') client.disconnect()
      else {
        const timer = setTimeout(() => client.disconnect(), QUIT_TIMEOUT_MS)
        try {
          await client.quit()
        } catch {
          client.disconnect()
        } finally {
          clearTimeout(timer)
        }
      }
      // 'end' follows the cut; a client caught between two reconnect attempts may not say so.
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, QUIT_TIMEOUT_MS).unref())])
    },
  }
}

/** Longest a gateway's close() waits for Redis to acknowledge QUIT before cutting the connection. */
const QUIT_TIMEOUT_MS = 2_000

async function openPostgres(name: string, url: string, table: string | undefined): Promise<Opened> {
  const pg = await importDriver(() => import('pg'), 'pg', name, 'postgres')
  const { PostgresStore } = await import('../stores/postgres/postgres-store.js')
  const pool: PgPool = new pg.default.Pool({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS })
  // An idle connection the server drops (a restart, a failover) is reported on the pool; without
  // a listener that event would crash the process. The next query gets a fresh connection.
  pool.on('error', () => {})
  const store = new PostgresStore({ client: pool, ...(table === undefined ? {} : { table }) })
  try {
    await store.ensureSchema()
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }
  return { store, backend: { type: 'postgres', pool }, closeClient: () => pool.end() }
}

async function openMysql(name: string, url: string, table: string | undefined): Promise<Opened> {
  const mysql = await importDriver(() => import('mysql2/promise'), 'mysql2', name, 'mysql')
  const { MysqlStore } = await import('../stores/mysql/mysql-store.js')
  // mysql2 reads host, port, user, password and database from the URL whatever its scheme (mariadb:// too).
  const pool: MysqlPool = mysql.createPool({ uri: url, connectTimeout: CONNECT_TIMEOUT_MS })
  const store = new MysqlStore({ client: pool, ...(table === undefined ? {} : { table }) })
  try {
    await store.ensureSchema()
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }
  return { store, backend: { type: 'mysql', pool }, closeClient: () => pool.end() }
}

/** SQLite is one file on this machine: its rate limits are counted per process (the memory backend). */
async function openSqlite(name: string, path: string): Promise<Opened> {
  const { default: Database } = await importDriver(() => import('better-sqlite3'), 'better-sqlite3', name, 'sqlite')
  const { SqliteStore } = await import('../stores/sqlite/sqlite-store.js')
  const db = new Database(path)
  try {
    const store = new SqliteStore({ client: db })
    store.ensureSchema()
    return { store, backend: { type: 'memory' }, closeClient: async () => void db.close() }
  } catch (error) {
    db.close()
    throw error
  }
}

/** A store whose driver package is not installed. */
export class MissingDriverError extends Error {
  readonly packageName: string

  constructor(packageName: string, storeName: string, type: string, cause: unknown) {
    super(
      `Store "${storeName}" (${type}) needs the npm package "${packageName}", which is not installed: npm install ${packageName}`,
      { cause },
    )
    this.name = 'MissingDriverError'
    this.packageName = packageName
  }
}

/**
 * Import a driver package on demand (each is an optional peer: a gateway on Redis needs no pg).
 * A package that is not installed becomes a MissingDriverError naming it; any other failure (a
 * broken install) is thrown as it is.
 */
export async function importDriver<M>(
  load: () => Promise<M>,
  packageName: string,
  storeName: string,
  type: string,
): Promise<M> {
  try {
    return await load()
  } catch (error) {
    const code = (error as { code?: unknown })?.code
    const message = (error as Error)?.message ?? ''
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' ||
        code === 'MODULE_NOT_FOUND' ||
        /Cannot find (module|package)/.test(message)) &&
      message.includes(packageName)
    if (missing) throw new MissingDriverError(packageName, storeName, type, error)
    throw error
  }
}

/** The URL for messages, its password hidden. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparsable URL>'
  }
}
