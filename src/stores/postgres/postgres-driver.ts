// The subset of pg's Pool and Client that PostgresStore uses, so that importing the store never
// loads `pg`: a Pool, a connected Client, or anything else with the same `query` fits.

/** What `query` resolves to: the rows, and how many rows the statement touched. */
export interface PgQueryResult {
  // biome-ignore lint/suspicious/noExplicitAny: pg types rows as any; the store narrows each one
  rows: any[]
  rowCount: number | null
}

/**
 * A pg `Pool` or connected `Client`. Only `query(text, values)` is required; `end()` is called
 * by `close()` for a pool the store built from a factory. The connection fields are read only to
 * name the server in error messages.
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
