// The target database of a consumer, from whichever form the caller gave: a pg Pool, a
// mysql2/promise Pool, or a SqlDatabase an adapter made (Kysely, Knex, Drizzle, better-sqlite3).

import type { SqlDatabase } from '../sql/core/executor.js'
import { fromMysql2 } from '../sql/mysql2/mysql2-database.js'
import { fromPg } from '../sql/pg/pg-database.js'

export function targetDatabase(client: unknown): SqlDatabase<unknown> {
  const candidate = client as {
    transaction?: unknown
    dialect?: unknown
    getConnection?: unknown
    connect?: unknown
    totalCount?: unknown
  } | null
  if (candidate !== null && typeof candidate === 'object') {
    if (typeof candidate.transaction === 'function' && typeof candidate.dialect === 'string') {
      return client as SqlDatabase<unknown>
    }
    if (typeof candidate.getConnection === 'function') return fromMysql2(client as Parameters<typeof fromMysql2>[0])
    if (typeof candidate.connect === 'function' && typeof candidate.totalCount === 'number') {
      return fromPg(client as Parameters<typeof fromPg>[0])
    }
  }
  throw new TypeError(
    'consumeBinlog needs `client`: a pg Pool, a mysql2/promise Pool, or a SqlDatabase from an adapter (fromKysely, fromKnex, …); a single connection cannot hold one transaction per source transaction',
  )
}
