// The subset of better-sqlite3's Database that Idem uses, so that importing a store or an adapter
// never loads better-sqlite3: a better-sqlite3 Database fits these types as it is. Imports nothing.

export interface SqliteRunResult {
  changes: number
}

export interface SqliteStatement {
  run(...params: unknown[]): SqliteRunResult
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
}

export interface SqliteTransaction<A extends unknown[], R> {
  (...args: A): R
  immediate(...args: A): R
}

/** A better-sqlite3 Database, as SqliteStore uses it. */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement
  exec(sql: string): unknown
  pragma(source: string, options?: { simple?: boolean }): unknown
  // biome-ignore lint/suspicious/noExplicitAny: better-sqlite3's generic signature, loosened so its Database fits
  transaction(fn: (...args: any[]) => any): { immediate(...args: any[]): any }
  close(): unknown
  readonly open: boolean
}

/** A prepared statement, as transaction mode uses it (`reader`: whether it returns rows). */
export interface BetterSqlite3StatementLike {
  readonly reader: boolean
  all(...params: unknown[]): unknown[]
  run(...params: unknown[]): { changes: number }
}

/** The part of a better-sqlite3 Database that transaction mode uses. */
export interface BetterSqlite3Like {
  prepare(sql: string): BetterSqlite3StatementLike
  exec(sql: string): unknown
  readonly inTransaction: boolean
}
