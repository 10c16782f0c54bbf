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
  /**
   * Optional, offered by adapters that open the transaction themselves (a pg Pool, a mysql2
   * Pool): the same as `transaction`, but BEGIN is not sent up front and COMMIT not at the end
   * when `fn`'s first statement carried BEGIN and its last carried COMMIT (`edges`), each in
   * the round trip of a statement that had to be sent anyway. A statement sent on `sql` before
   * anything began sends BEGIN first, so `fn` stays in one transaction either way; `fn` must
   * not use `tx` before its first statement on `sql` or `edges`. When `fn` throws before a
   * COMMIT went through, the adapter rolls back (harmless when nothing began).
   */
  transactionWithEdges?<R>(fn: (tx: Tx, sql: SqlExecutor, edges: TransactionEdges) => Promise<R>): Promise<R>
}

/** The ends of a transaction that `SqlDatabase.transactionWithEdges` leaves to its function. */
export interface TransactionEdges {
  /** True until the transaction has begun: the next statement must begin it. */
  readonly pending: boolean
  /**
   * The connection's executor without the BEGIN that `sql` sends first while pending: for a
   * statement that begins the transaction itself (a procedure that runs START TRANSACTION).
   */
  readonly raw: SqlExecutor
  /** A statement just sent carried BEGIN: the adapter must not send its own. */
  begun(): void
  /** A statement just sent carried COMMIT, and it succeeded: nothing is left to commit. */
  committed(): void
  /**
   * Several statements separated by `;`, without parameters, in one round trip (PostgreSQL's
   * simple query protocol): one result per statement. If one fails the rest do not run and the
   * error is thrown. Absent where the connection cannot do it.
   */
  multi?(text: string): Promise<SqlResult[]>
  /**
   * `value` as a literal of the dialect for `multi`'s text, or undefined when it cannot be
   * inlined exactly (then send it as a parameter instead). Present with `multi`.
   */
  literal?(value: unknown): string | undefined
}

/** Placeholder `n` (1-based) in `dialect`'s own syntax. */
export function placeholder(dialect: SqlDialect, n: number): string {
  return dialect === 'postgres' ? `$${n}` : '?'
}
