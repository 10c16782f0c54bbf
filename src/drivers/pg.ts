// The subset of pg (node-postgres) that Idem uses, so that importing a store or an adapter never
// loads `pg`: a Pool, a Client or a PoolClient fits these types as it is. Imports nothing.

/** What `query` resolves to: the rows, and how many rows the statement touched. */
export interface PgQueryResult {
  // biome-ignore lint/suspicious/noExplicitAny: pg types rows as any; each user narrows them
  rows: any[]
  rowCount: number | null
}

/**
 * A pg `Pool` or connected `Client`, as PostgresStore uses it. Only `query(text, values)` is
 * required; `end()` is called by `close()` for a pool the store built from a factory. The
 * connection fields are read only to name the server in error messages.
 */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgQueryResult>
  end?(): Promise<void>
  /** A Client's host and port. */
  readonly host?: string
  readonly port?: number
  /** A Pool's options. */
  readonly options?: { host?: string; port?: number; connectionString?: string }
}

/** A pool or client, or a (lazy) factory for one that the store then owns and ends on `close()`. */
export type PgConnection = PgQueryable | (() => PgQueryable | Promise<PgQueryable>)

/** The part of a pg Client / PoolClient that transaction mode uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResult>
}

/** The part of a pg Pool that transaction mode uses. */
export interface PgPoolLike {
  connect(): Promise<
    PgClientLike & {
      release(destroy?: boolean | Error): void
      /** A checked-out client's events: pg emits 'error' when its connection breaks. */
      on?(event: 'error', listener: (error: Error) => void): unknown
      off?(event: 'error', listener: (error: Error) => void): unknown
    }
  >
  readonly totalCount: number
}
