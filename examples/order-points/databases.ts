// Where the example runs: a temporary SQLite file, or a throwaway schema on a PostgreSQL server.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { fromPg } from 'idem/postgres'
import type { SqlDatabase } from 'idem/sql'
import { fromBetterSqlite3 } from 'idem/sqlite'
import pg from 'pg'

export interface ExampleDatabase {
  name: string
  db: SqlDatabase<unknown>
  close(): Promise<void>
}

export function openSqlite(): ExampleDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'idem-order-points-'))
  const connection = new Database(join(dir, 'shop.db'))
  return {
    name: 'SQLite',
    db: fromBetterSqlite3(connection),
    async close() {
      connection.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A pool whose connections see a fresh schema first (search_path), dropped again on close. */
export async function openPostgres(url: string): Promise<ExampleDatabase> {
  const schema = `order_points_${randomBytes(4).toString('hex')}`
  const pool = new pg.Pool({ connectionString: url, max: 5, options: `-c search_path=${schema}` })
  await pool.query(`CREATE SCHEMA ${schema}`)
  return {
    name: 'PostgreSQL',
    db: fromPg(pool),
    async close() {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`)
      await pool.end()
    },
  }
}
