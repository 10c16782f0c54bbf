// fromPg: transaction mode on a pg Pool (Idem opens each transaction, and can send BEGIN and
// COMMIT with its own statements) or on a client where the caller already ran BEGIN (Idem joins
// it under a savepoint).

import type { PgClientLike, PgPoolLike, PgQueryResult } from '../../drivers/pg.js'
import type { SqlDatabase, SqlExecutor, TransactionEdges } from '../core/executor.js'
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

/**
 * One transaction on a client checked out of `pool`. With `eager`, BEGIN goes first, on its own;
 * otherwise it waits for the first statement (which may carry it, see TransactionEdges), and
 * COMMIT is skipped when a statement carried it.
 */
async function onPooledClient<R>(
  pool: PgPoolLike,
  eager: boolean,
  fn: (client: PgClientLike, sql: SqlExecutor, edges: TransactionEdges) => Promise<R>,
): Promise<R> {
  const client = await pool.connect()
  const plain = pgExecutor(client)
  // In an object, so that TypeScript does not narrow it across the callbacks that change it.
  const at: { state: 'pending' | 'open' | 'committed' } = { state: 'pending' }
  let broken: Error | undefined
  const sql: SqlExecutor = {
    dialect: 'postgres',
    async execute(text, params) {
      if (at.state === 'pending') {
        await client.query('BEGIN')
        at.state = 'open'
      }
      return plain.execute(text, params)
    },
  }
  const edges: TransactionEdges = {
    raw: plain,
    get pending() {
      return at.state === 'pending'
    },
    begun: () => {
      at.state = 'open'
    },
    committed: () => {
      at.state = 'committed'
    },
    multi: async (text) => {
      // A text of several statements comes back as one result per statement; of one, as one.
      const results = (await client.query(text)) as PgQueryResult | PgQueryResult[]
      return (Array.isArray(results) ? results : [results]).map((r) => ({
        rows: r.rows ?? [],
        affectedRows: r.rowCount ?? 0,
      }))
    },
    literal: pgLiteral,
  }
  try {
    if (eager) {
      await client.query('BEGIN')
      at.state = 'open'
    }
    const result = await fn(client, sql, edges)
    if (at.state === 'open') await client.query('COMMIT')
    return result
  } catch (error) {
    // Also when nothing began as far as we know: a text that carried BEGIN may have failed after
    // it. ROLLBACK outside a transaction is only a warning.
    if (at.state !== 'committed') {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        // The connection is unusable: destroy it rather than return it to the pool mid-transaction.
        broken = rollbackError
      })
    }
    throw error
  } finally {
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
