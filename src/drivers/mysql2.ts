// The subset of mysql2's promise API (`mysql2/promise`) that Idem uses, so that importing a store
// or an adapter never loads mysql2: a Pool, a PoolConnection or a Connection fits. Imports nothing.

/** Per-query options MysqlStore sets; the rest of the client's configuration is left alone. */
export interface MysqlQueryOptions {
  sql: string
  values?: unknown[]
  /** The store reads rows as objects whatever the client's default. */
  rowsAsArray?: boolean
  nestTables?: boolean
}

/** A mysql2 promise Pool, PoolConnection or Connection, as MysqlStore uses it (the text protocol `query`). */
export interface MysqlClient {
  // biome-ignore lint/suspicious/noExplicitAny: mysql2's generic result tuple, loosened so its Pool and Connection fit
  query(options: MysqlQueryOptions): Promise<[any, any]>
}

/** A client the store can end: used only for a client it created through a factory. */
export interface MysqlEndableClient extends MysqlClient {
  end(): Promise<void>
}

/** What a mysql2 error carries (a Node socket error, or a server error with its errno). */
export interface MysqlDriverError extends Error {
  code?: string
  errno?: number
  fatal?: boolean
  address?: string
  port?: number
}

/** The part of a mysql2/promise Connection or PoolConnection that transaction mode uses. */
export interface Mysql2ConnectionLike {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>
}

/** The part of a mysql2/promise Pool that transaction mode uses. */
export interface Mysql2PoolLike {
  getConnection(): Promise<
    Mysql2ConnectionLike & {
      beginTransaction(): Promise<void>
      commit(): Promise<void>
      rollback(): Promise<void>
      release(): void
      destroy(): void
    }
  >
}
