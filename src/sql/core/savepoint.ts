// Joining a transaction the caller opened: Idem's claim and the function's writes run under a
// savepoint, so that a throw undoes exactly them and leaves the caller's earlier work alone.

import { AsyncLocalStorage } from 'node:async_hooks'
import type { SqlExecutor } from './executor.js'

const joined = new AsyncLocalStorage<true>()

/**
 * True inside the function of `inSavepoint`: the transaction is the caller's. Transaction mode
 * then never retries a conflict itself, since the database may have rolled back the caller's
 * whole transaction (an InnoDB deadlock does).
 */
export function insideCallerTransaction(): boolean {
  return joined.getStore() === true
}

let counter = 0

/**
 * Run `fn` under a fresh savepoint on `sql`'s connection: released when `fn` resolves, rolled
 * back to (then released) when it throws. A connection outside a transaction fails with a
 * TypeError that says how to call it instead.
 */
export async function inSavepoint<R>(sql: SqlExecutor, fn: () => Promise<R>, adapter: string): Promise<R> {
  counter = (counter + 1) % 1_000_000_000
  const name = `idem_sp_${counter}`
  try {
    await sql.execute(`SAVEPOINT ${name}`, [])
  } catch (cause) {
    throw new TypeError(
      `${adapter}: the handle passed is not inside a transaction (SAVEPOINT failed: ${(cause as Error)?.message}). ` +
        'Pass the pool or database object to let Idem open the transaction, or open one first.',
      { cause },
    )
  }
  let result: R
  try {
    result = await joined.run(true, fn)
  } catch (error) {
    // If the rollback itself fails the connection is broken, and the caller's transaction with it.
    await sql.execute(`ROLLBACK TO SAVEPOINT ${name}`, []).then(
      () => sql.execute(`RELEASE SAVEPOINT ${name}`, []),
      () => undefined,
    )
    throw error
  }
  await sql.execute(`RELEASE SAVEPOINT ${name}`, [])
  return result
}
