// fromPg: transaction mode on a pg Pool (Idem opens each transaction, and can send BEGIN and
// COMMIT with its own statements) or on a client where the caller already ran BEGIN (Idem joins
// it under a savepoint).

import type { PgClientLike, PgPoolLike, PgQueryResult } from '../../drivers/pg.js'
import type { SqlDatabase, SqlExecutor, TransactionEdges } from '../core/executor.js'
import { inPooledTransaction } from '../core/pooled-transaction.js'
import { inSavepoint } from '../core/savepoint.js'
import { pgLiteral } from './pg-literal.js'

export type { PgClientLike, PgPoolLike }

export function pgExecutor(client: PgClientLike): SqlExecutor {
  return {
    dialect: 'postgres',
    async execute(sql, params) {
      const result = await client.query(sql, params as unknown[])
      return { rows: result.rows, affectedRows: result.rowCount ?? 0 }
    },
  }
}

/**
 * A pg `Pool`: each `idem.transaction` checks out a client, runs BEGIN … COMMIT on it and gives
 * your function that client. A `Client` or `PoolClient` is taken as a transaction you opened
 * (BEGIN already sent): Idem works under a savepoint in it and never commits.
 *
 * Your function's handle is typed `C`: name the client type to get pg's own methods on it.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { fromPg } from 'idem/sql'
 *
 * const db = fromPg<pg.PoolClient>(pool)
 * await idem.transaction(db, { key: message.id, payload: message.body }, async (client) => {
 *   await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [10, 'acc-1'])
 * })
 * ```
 */
export function fromPg<C extends PgClientLike>(poolOrClient: PgPoolLike | C): SqlDatabase<C> {
  if (isPool(poolOrClient)) {
    const pool = poolOrClient
    return {
      dialect: 'postgres',
      transaction: (fn) => onPooledClient(pool, true, (client, sql) => fn(client as unknown as C, sql)),
      transactionWithEdges: (fn) =>
        onPooledClient(pool, false, (client, sql, edges) => fn(client as unknown as C, sql, edges)),
    }
  }
  const client = poolOrClient
  const sql = pgExecutor(client)
  return {
    dialect: 'postgres',
    transaction: (fn) => inSavepoint(sql, () => fn(client, sql), 'fromPg'),
  }
}

/** One transaction on a client checked out of `pool` (see inPooledTransaction). */
async function onPooledClient<R>(
  pool: PgPoolLike,
  eager: boolean,
  fn: (client: PgClientLike, sql: SqlExecutor, edges: TransactionEdges) => Promise<R>,
): Promise<R> {
  const client = await pool.connect()
  let broken: Error | undefined
  // pg-pool listens for a client's 'error' only while it is idle: a connection reset while it is
  // checked out here would be an unhandled 'error' event and end the process. The query under way
  // fails on its own; the client is destroyed on release.
  const onError = (error: Error) => {
    broken ??= error
  }
  client.on?.('error', onError)
  try {
    return await inPooledTransaction(
      {
        dialect: 'postgres',
        plain: pgExecutor(client),
        begin: () => client.query('BEGIN'),
        commit: () => client.query('COMMIT'),
        rollback: () => client.query('ROLLBACK'),
        rollbackFailed: (failure) => {
          broken = failure
        },
        multi: {
          multi: async (text) => {
            // A text of several statements comes back as one result per statement; of one, as one.
            const results = (await client.query(text)) as PgQueryResult | PgQueryResult[]
            return (Array.isArray(results) ? results : [results]).map((r) => ({
              rows: r.rows ?? [],
              affectedRows: r.rowCount ?? 0,
            }))
          },
          literal: pgLiteral,
        },
      },
      eager,
      (sql, edges) => fn(client, sql, edges),
    )
  } finally {
    client.off?.('error', onError)
    // The connection is unusable after a failed rollback or a reset: destroy it rather than return it.
    client.release(broken)
  }
}

function isPool(value: unknown): value is PgPoolLike {
  if (value === null || typeof value !== 'object') {
    throw new TypeError('fromPg needs a pg Pool, or a Client / PoolClient inside a transaction')
  }
  const candidate = value as { connect?: unknown; totalCount?: unknown; query?: unknown }
  if (typeof candidate.query !== 'function') {
    throw new TypeError('fromPg needs a pg Pool, or a Client / PoolClient inside a transaction')
  }
  return typeof candidate.connect === 'function' && typeof candidate.totalCount === 'number'
}
