// Test helpers for the MysqlStore suites: a pool on the local MariaDB and a store on a table of
// its own, dropped (with its procedures) afterwards.

import mysql from 'mysql2/promise'
import { mysqlDropSchema } from '../../../../src/stores/mysql/mysql-schema.js'
import { MysqlStore, type MysqlStoreOptions } from '../../../../src/stores/mysql/mysql-store.js'
import { isolatedName, SERVICES } from '../../../services.js'

export const MYSQL_URL = SERVICES.MariaDB.url

export function createTestPool(connectionLimit = 10): mysql.Pool {
  return mysql.createPool({ uri: MYSQL_URL, connectionLimit })
}

export interface TestStore {
  store: MysqlStore
  pool: mysql.Pool
  table: string
  cleanup(): Promise<void>
}

/** A store on a fresh table (schema ensured) with its own pool; cleanup drops both. */
export async function createTestStore(options: Partial<MysqlStoreOptions> = {}): Promise<TestStore> {
  const pool = createTestPool()
  const table = isolatedName('idem')
  const store = new MysqlStore({ client: pool, table, ...options })
  await store.ensureSchema()
  return {
    store,
    pool,
    table,
    cleanup: async () => {
      await store.close()
      await dropSchema(pool, table)
      await pool.end()
    },
  }
}

export async function dropSchema(client: mysql.Pool | mysql.Connection, table: string): Promise<void> {
  for (const statement of mysqlDropSchema({ table })) await client.query(statement)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
