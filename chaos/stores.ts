// The store modes of the chaos run: where a worker's Idem keeps its records. Every network store
// is reached through the run's proxy (the port in the config), so that network faults hit it.

import Database from 'better-sqlite3'
import type { IdempotencyStore } from 'idem'
import { fromMysql2, MysqlStore } from 'idem/mysql'
import { fromPg, PostgresStore } from 'idem/postgres'
import { RedisStore } from 'idem/redis'
import type { SqlDatabase } from 'idem/sql'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import type { WorkerConfig } from './worker-config.js'

export interface ChaosStore {
  store: IdempotencyStore
  /** Transaction mode: the database the record and the charge commit in. */
  sqlDatabase?: SqlDatabase<unknown>
  close(): Promise<void>
}

/**
 * The pool as an application makes it: an 'error' listener on the pool (for idle clients) and
 * none on the clients; transaction mode listens on a client while it holds one.
 */
export function pgPool(port: number): pg.Pool {
  // A short connection timeout: a blackholed connect must fail (and be retried), not hang.
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'chaos',
    max: 8,
    connectionTimeoutMillis: 3000,
  })
  pool.on('error', () => {})
  return pool
}

export async function openStore(config: WorkerConfig): Promise<ChaosStore> {
  switch (config.store) {
    case 'redis': {
      const client = new Redis({
        port: config.storePort,
        host: '127.0.0.1',
        connectTimeout: 3000,
        commandTimeout: 5000,
      })
      client.on('error', () => {})
      const store = new RedisStore({ client, prefix: `chaos:${config.run}:` })
      return { store, close: async () => void client.disconnect() }
    }
    case 'postgres':
    case 'transaction-postgres': {
      const pool = pgPool(config.storePort)
      const store = new PostgresStore({ client: pool })
      const sqlDatabase = config.store === 'transaction-postgres' ? (fromPg(pool) as SqlDatabase<unknown>) : undefined
      return { store, sqlDatabase, close: () => pool.end() }
    }
    case 'mysql':
    case 'transaction-mysql': {
      const pool = mysql.createPool({
        host: '127.0.0.1',
        port: config.storePort,
        user: 'root',
        database: 'chaos',
        connectionLimit: 8,
        connectTimeout: 3000,
      })
      const store = new MysqlStore({ client: pool })
      // Transaction mode: the store and the transactions on one pool, as an application has them.
      const sqlDatabase = config.store === 'transaction-mysql' ? (fromMysql2(pool) as SqlDatabase<unknown>) : undefined
      return { store, sqlDatabase, close: () => pool.end() }
    }
    case 'sqlite':
    case 'transaction-sqlite': {
      if (config.sqliteFile === undefined) throw new Error(`the ${config.store} store mode needs sqliteFile`)
      const db = new Database(config.sqliteFile)
      db.pragma('busy_timeout = 10000')
      const store = new SqliteStore({ client: db })
      // Transaction mode: one connection per process for the store and the transactions (a second
      // connection in the same process would block the event loop on the write lock).
      const sqlDatabase =
        config.store === 'transaction-sqlite' ? (fromBetterSqlite3(db) as SqlDatabase<unknown>) : undefined
      return {
        store,
        sqlDatabase,
        close: async () => {
          db.close()
        },
      }
    }
    case 'none':
      throw new Error('the control has no store')
  }
}
