// The seam between Idem's transaction mode and a user's data layer: one method that runs one SQL
// statement on the transaction's connection, and a way to run a function inside a transaction.
// Adapters for pg, mysql2, better-sqlite3, Kysely, Knex and Drizzle are a few lines each.

export type SqlDialect = 'postgres' | 'mysql' | 'sqlite'

export interface SqlResult {
  /** Rows the statement returned (a SELECT, or a write with RETURNING); empty otherwise. */
  rows: Record<string, unknown>[]
  /**
   * Rows the statement wrote (for MySQL, the rows its WHERE matched). For a statement with
   * RETURNING, the number of rows returned.
   */
  affectedRows: number
}

/**
 * Runs one statement on one connection, inside whatever transaction that connection is in.
 * Placeholders are the dialect's own: `$1, $2, …` for PostgreSQL, `?` for MySQL and SQLite.
 */
export interface SqlExecutor {
  readonly dialect: SqlDialect
  execute(sql: string, params: readonly unknown[]): Promise<SqlResult>
}

/**
 * A database Idem can run a transaction on. `Tx` is the handle the user's function receives (a pg
 * PoolClient, a Kysely Transaction, a Knex trx…), so that its writes join the same transaction.
 */
export interface SqlDatabase<Tx> {
  readonly dialect: SqlDialect
  /**
   * Run `fn` inside a transaction. Over a pool or a database object the adapter opens one,
   * commits when `fn` resolves and rolls back when it throws. Over a transaction the caller
   * already opened, it runs `fn` under a savepoint instead: a throw rolls back to it, and commit
   * stays the caller's.
   */
  transaction<R>(fn: (tx: Tx, sql: SqlExecutor) => Promise<R>): Promise<R>
}

/** Placeholder `n` (1-based) in `dialect`'s own syntax. */
export function placeholder(dialect: SqlDialect, n: number): string {
  return dialect === 'postgres' ? `$${n}` : '?'
}
