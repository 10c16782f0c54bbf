// fromMysql2: transaction mode on a mysql2 promise Pool (Idem opens each transaction, and its
// procedures can start and commit it with the claim and the completion) or on a connection where
// the caller already ran START TRANSACTION (Idem joins it under a savepoint).

import type { Mysql2ConnectionLike, Mysql2PoolLike } from '../../drivers/mysql2.js'
import type { SqlDatabase, SqlExecutor, TransactionEdges } from '../core/executor.js'
import { inPooledTransaction } from '../core/pooled-transaction.js'
import { inSavepoint } from '../core/savepoint.js'
import { assertMysql2InTransaction } from './mysql2-in-transaction.js'

export type { Mysql2ConnectionLike, Mysql2PoolLike }

export function mysql2Executor(connection: Mysql2ConnectionLike): SqlExecutor {
  return {
    dialect: 'mysql',
    async execute(sql, params) {
      const [result] = await connection.query(sql, params as unknown[])
      if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], affectedRows: result.length }
      return { rows: [], affectedRows: (result as { affectedRows?: number }).affectedRows ?? 0 }
    },
  }
}

/**
 * A mysql2/promise `Pool`: each `idem.transaction` takes a connection, runs START TRANSACTION …
 * COMMIT on it and gives your function that connection. A `Connection` or `PoolConnection` is
 * taken as a transaction you opened: Idem works under a savepoint in it and never commits.
 *
 * @example
 * ```ts
 * import type { PoolConnection } from 'mysql2/promise'
 * import { fromMysql2 } from 'idem/sql'
 *
 * const db = fromMysql2<PoolConnection>(pool)
 * await idem.transaction(db, { key: message.id, payload: message.body }, async (connection) => {
 *   await connection.query('UPDATE accounts SET balance = balance - ? WHERE id = ?', [10, 'acc-1'])
 * })
 * ```
 */
export function fromMysql2<C extends Mysql2ConnectionLike>(poolOrConnection: Mysql2PoolLike | C): SqlDatabase<C> {
  const candidate = poolOrConnection as { query?: unknown; getConnection?: unknown; then?: unknown }
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.query !== 'function') {
    throw new TypeError('fromMysql2 needs a mysql2/promise Pool, or a Connection inside a transaction')
  }
  if (typeof candidate.getConnection === 'function') {
    const pool = poolOrConnection as Mysql2PoolLike
    return {
      dialect: 'mysql',
      transaction: (fn) => onPooledConnection(pool, true, (connection, sql) => fn(connection as unknown as C, sql)),
      transactionWithEdges: (fn) =>
        onPooledConnection(pool, false, (connection, sql, edges) => fn(connection as unknown as C, sql, edges)),
    }
  }
  const connection = poolOrConnection as C
  const sql = mysql2Executor(connection)
  return {
    dialect: 'mysql',
    async transaction(fn) {
      // SAVEPOINT outside a transaction succeeds on MySQL and MariaDB: check first, or every
      // statement (the claim, the function's writes) would commit on its own.
      await assertMysql2InTransaction(connection, 'fromMysql2')
      return inSavepoint(sql, () => fn(connection, sql), 'fromMysql2')
    },
  }
}

type PooledConnection = Awaited<ReturnType<Mysql2PoolLike['getConnection']>>

/**
 * One transaction on a connection taken from `pool` (see inPooledTransaction). No `multi`:
 * several statements in one text need the connection option multipleStatements, which is the
 * pool owner's choice (and widens what an injected string could do), so it is never relied on;
 * a procedure that runs START TRANSACTION itself carries the BEGIN instead.
 */
async function onPooledConnection<R>(
  pool: Mysql2PoolLike,
  eager: boolean,
  fn: (connection: PooledConnection, sql: SqlExecutor, edges: TransactionEdges) => Promise<R>,
): Promise<R> {
  const connection = await pool.getConnection()
  let broken = false
  try {
    return await inPooledTransaction(
      {
        dialect: 'mysql',
        plain: mysql2Executor(connection),
        begin: () => connection.beginTransaction(),
        commit: () => connection.commit(),
        rollback: () => connection.rollback(),
        rollbackFailed: () => {
          broken = true
        },
      },
      eager,
      (sql, edges) => fn(connection, sql, edges),
    )
  } finally {
    // A connection whose rollback failed may still be mid-transaction: never reuse it.
    if (broken) connection.destroy()
    else connection.release()
  }
}
