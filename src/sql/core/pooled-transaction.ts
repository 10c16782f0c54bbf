// One transaction on a connection taken from a pool, whose BEGIN may travel with the first
// statement and whose COMMIT with the last (TransactionEdges): the state both the pg and the
// mysql2 adapters keep for it, and the commit-or-roll-back around the caller's function.

import type { SqlDialect, SqlExecutor, TransactionEdges } from './executor.js'

/** What an adapter's connection does at the ends of a transaction. */
export interface PooledConnectionEnds {
  dialect: SqlDialect
  /** The connection's executor, without any BEGIN of its own. */
  plain: SqlExecutor
  begin(): Promise<unknown>
  commit(): Promise<unknown>
  /** Called only when something may have begun. */
  rollback(): Promise<unknown>
  /** The rollback failed: the connection may still be mid-transaction and must not be reused. */
  rollbackFailed(failure: Error): void
  /** `multi` and `literal`, where the connection can send several statements in one text. */
  multi?: Pick<TransactionEdges, 'multi' | 'literal'>
}

/**
 * Run `fn` in one transaction on `ends`' connection. With `eager`, BEGIN goes first, on its own;
 * otherwise it waits for the first statement (which may carry it, see TransactionEdges), and
 * COMMIT is skipped when a statement carried it. Rolls back on any throw, also when nothing began
 * as far as this code knows (a text that carried BEGIN may have failed after it; a ROLLBACK
 * outside a transaction is harmless), and rethrows.
 */
export async function inPooledTransaction<R>(
  ends: PooledConnectionEnds,
  eager: boolean,
  fn: (sql: SqlExecutor, edges: TransactionEdges) => Promise<R>,
): Promise<R> {
  // In an object, so that TypeScript does not narrow it across the callbacks that change it.
  const at: { state: 'pending' | 'open' | 'committed' } = { state: 'pending' }
  const sql: SqlExecutor = {
    dialect: ends.dialect,
    async execute(text, params) {
      if (at.state === 'pending') {
        await ends.begin()
        at.state = 'open'
      }
      return ends.plain.execute(text, params)
    },
  }
  const edges: TransactionEdges = {
    raw: ends.plain,
    get pending() {
      return at.state === 'pending'
    },
    begun: () => {
      at.state = 'open'
    },
    committed: () => {
      at.state = 'committed'
    },
    ...ends.multi,
  }
  try {
    if (eager) {
      await ends.begin()
      at.state = 'open'
    }
    const result = await fn(sql, edges)
    if (at.state === 'open') await ends.commit()
    return result
  } catch (error) {
    if (at.state !== 'committed') await ends.rollback().catch((failure: Error) => ends.rollbackFailed(failure))
    throw error
  }
}
