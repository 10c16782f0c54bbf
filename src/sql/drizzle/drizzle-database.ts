// fromDrizzle: transaction mode on a Drizzle database (Idem opens each transaction) or on a Drizzle
// transaction the caller is in (Idem joins it under a savepoint), for the node-postgres, mysql2
// and better-sqlite3 drivers. Idem's statements run through Drizzle's `sql` with its own params.

import { entityKind, type SQL, type SQLChunk, sql } from 'drizzle-orm'
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core'
import type { PgQueryResult } from '../../drivers/pg.js'
import { type BetterSqlite3Like, fromBetterSqlite3 } from '../better-sqlite3/better-sqlite3-database.js'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../core/executor.js'
import { type SplitStatement, splitNumbered, splitPositional } from '../core/placeholders.js'
import { inSavepoint } from '../core/savepoint.js'
import { mysql2Executor } from '../mysql2/mysql2-database.js'
import { pgExecutor } from '../pg/pg-database.js'

/** What Idem uses of a Drizzle database or transaction on PostgreSQL or MySQL. */
export interface DrizzleAsyncLike<Tx> {
  execute(query: SQL): PromiseLike<unknown>
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>
}

/**
 * A Drizzle SQLite database with a synchronous driver; Idem uses its `$client`, which must be a
 * better-sqlite3 Database (checked when the adapter is made).
 */
// biome-ignore lint/suspicious/noExplicitAny: any schema; Idem runs only its own SQL on it
export type DrizzleSqliteLike = BaseSQLiteDatabase<'sync', any, any, any>

/** Drizzle's class names (its `entityKind`, stable across copies of the package) → the dialect. */
const DATABASES: Record<string, SqlDialect> = {
  PgDatabase: 'postgres',
  MySqlDatabase: 'mysql',
  BaseSQLiteDatabase: 'sqlite',
}
const TRANSACTIONS = new Set(['PgTransaction', 'MySqlTransaction', 'SQLiteTransaction'])

export function drizzleExecutor(tx: DrizzleAsyncLike<unknown>, dialect: 'postgres' | 'mysql'): SqlExecutor {
  if (dialect === 'postgres') {
    return pgExecutor({
      async query(text, values = []) {
        const result = await tx.execute(toDrizzleSql(splitNumbered(text, values.length), values))
        if (!Array.isArray((result as Partial<PgQueryResult> | null)?.rows)) throw unsupported('postgres')
        return result as PgQueryResult
      },
    })
  }
  return mysql2Executor({
    async query(text, values = []) {
      const result = await tx.execute(toDrizzleSql(splitPositional(text, values.length), values))
      if (!Array.isArray(result)) throw unsupported('mysql')
      return result as [unknown, unknown]
    },
  })
}

/**
 * A Drizzle database: each `idem.transaction` runs in `db.transaction(…)` and your function gets
 * that transaction. A Drizzle transaction is taken as one you opened: Idem works under a savepoint
 * in it and never commits. On better-sqlite3, whose Drizzle transactions are synchronous, Idem
 * runs BEGIN IMMEDIATE … COMMIT itself and your function gets the database (or, inside a BEGIN you
 * sent, joins it under a savepoint). `dialect`, when given, is checked against the database's.
 *
 * @example
 * ```ts
 * import { fromDrizzle } from 'idem/drizzle'
 *
 * await idem.transaction(fromDrizzle(db), { key, payload }, async (tx) => {
 *   await tx.update(accounts).set({ balance: 0 }).where(eq(accounts.id, 'acc-1'))
 * })
 * ```
 */
export function fromDrizzle<D extends DrizzleSqliteLike>(db: D, dialect?: 'sqlite'): SqlDatabase<D>
export function fromDrizzle<Tx>(dbOrTx: DrizzleAsyncLike<Tx>, dialect?: 'postgres' | 'mysql'): SqlDatabase<Tx>
export function fromDrizzle(dbOrTx: unknown, dialect?: SqlDialect): SqlDatabase<unknown> {
  const kind = kindOf(dbOrTx)
  if (kind === null) throw new TypeError('fromDrizzle needs a Drizzle database or transaction')
  if (dialect !== undefined && dialect !== kind.dialect) {
    throw new TypeError(`fromDrizzle: this is a ${kind.dialect} database, not ${JSON.stringify(dialect)}`)
  }
  if (kind.dialect === 'sqlite') return sqliteDatabase(dbOrTx, kind.transaction)
  const db = dbOrTx as DrizzleAsyncLike<unknown>
  const resolved = kind.dialect
  if (kind.transaction) {
    const sql = drizzleExecutor(db, resolved)
    return { dialect: resolved, transaction: (fn) => inSavepoint(sql, () => fn(db, sql), 'fromDrizzle') }
  }
  return {
    dialect: resolved,
    transaction: (fn) => db.transaction((tx) => fn(tx, drizzleExecutor(tx as DrizzleAsyncLike<unknown>, resolved))),
  }
}

function sqliteDatabase(db: unknown, isTransaction: boolean): SqlDatabase<unknown> {
  if (isTransaction) {
    throw new TypeError(
      "fromDrizzle: a Drizzle SQLite transaction is synchronous and cannot wait for Idem's async work. " +
        'Pass the database: Idem opens the transaction itself, or joins one you began with db.run(sql`BEGIN`)',
    )
  }
  const client = (db as { $client?: Partial<BetterSqlite3Like> }).$client
  if (client == null || typeof client.prepare !== 'function' || typeof client.exec !== 'function') {
    throw new TypeError('fromDrizzle supports SQLite through drizzle-orm/better-sqlite3 (its $client is not one)')
  }
  // The better-sqlite3 adapter already serialises Idem's transactions per connection and joins a
  // transaction the caller began; Drizzle's queries on `db` run on that same connection.
  const inner = fromBetterSqlite3(client as BetterSqlite3Like)
  return { dialect: 'sqlite', transaction: (fn) => inner.transaction((_connection, sql) => fn(db, sql)) }
}

/** The dialect and whether `value` is a transaction, from the chain of Drizzle entity kinds. */
function kindOf(value: unknown): { dialect: SqlDialect; transaction: boolean } | null {
  if (value === null || typeof value !== 'object') return null
  let dialect: SqlDialect | undefined
  let transaction = false
  for (
    let cls = Object.getPrototypeOf(value)?.constructor;
    typeof cls === 'function';
    cls = Object.getPrototypeOf(cls)
  ) {
    const name = (cls as { [entityKind]?: unknown })[entityKind]
    if (typeof name !== 'string') continue
    dialect ??= DATABASES[name]
    if (TRANSACTIONS.has(name)) transaction = true
  }
  return dialect === undefined ? null : { dialect, transaction }
}

/** Idem's statement as Drizzle SQL: its text verbatim, each value a parameter Drizzle numbers. */
function toDrizzleSql(split: SplitStatement, params: readonly unknown[]): SQL {
  const chunks: SQLChunk[] = [sql.raw(split.text[0] ?? '')]
  split.order.forEach((index, i) => {
    chunks.push(sql.param(params[index]), sql.raw(split.text[i + 1] ?? ''))
  })
  return sql.join(chunks)
}

function unsupported(dialect: SqlDialect): TypeError {
  const driver = dialect === 'postgres' ? 'drizzle-orm/node-postgres' : 'drizzle-orm/mysql2'
  return new TypeError(`fromDrizzle supports ${dialect} through ${driver}: this driver answered in another shape`)
}
