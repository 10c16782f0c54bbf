// fromPg: transaction mode on a pg Pool (Idem opens each transaction) or on a client where the
// caller already ran BEGIN (Idem joins it under a savepoint).

import type { PgQueryResult } from '../../stores/postgres/postgres-driver.js'
import type { SqlDatabase, SqlExecutor } from '../executor.js'
import { inSavepoint } from '../savepoint.js'

/** The part of a pg Client / PoolClient that transaction mode uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResult>
}

/** The part of a pg Pool that transaction mode uses. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike & { release(destroy?: boolean | Error): void }>
  readonly totalCount: number
}

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
