// fromPg: transaction mode on a pg Pool (Idem opens each transaction) or on a client where the
// caller already ran BEGIN (Idem joins it under a savepoint).

import type { PgClientLike, PgPoolLike } from '../../drivers/pg.js'
import type { SqlDatabase, SqlExecutor } from '../core/executor.js'
import { inSavepoint } from '../core/savepoint.js'

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
      async transaction(fn) {
        const client = await pool.connect()
        let broken: Error | undefined
        try {
          await client.query('BEGIN')
          const result = await fn(client as unknown as C, pgExecutor(client))
          await client.query('COMMIT')
          return result
        } catch (error) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => {
            // The connection is unusable: destroy it rather than return it to the pool mid-transaction.
            broken = rollbackError
          })
          throw error
        } finally {
          client.release(broken)
        }
      },
    }
  }
  const client = poolOrClient
  const sql = pgExecutor(client)
  return {
    dialect: 'postgres',
    transaction: (fn) => inSavepoint(sql, () => fn(client, sql), 'fromPg'),
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
