// The subset of better-sqlite3's Database that SqliteStore uses, so the core never imports it.

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

export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement
  exec(sql: string): unknown
  pragma(source: string, options?: { simple?: boolean }): unknown
  // biome-ignore lint/suspicious/noExplicitAny: better-sqlite3's generic signature, loosened so its Database fits
  transaction(fn: (...args: any[]) => any): { immediate(...args: any[]): any }
  close(): unknown
  readonly open: boolean
}
