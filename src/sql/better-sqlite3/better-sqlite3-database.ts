// fromBetterSqlite3: transaction mode on a better-sqlite3 Database. Idem opens BEGIN IMMEDIATE
// (the write lock up front, so two processes never deadlock upgrading a read to a write), or,
// when the connection is already in a transaction, joins it under a savepoint.

import { AsyncLocalStorage } from 'node:async_hooks'
import type { BetterSqlite3Like, BetterSqlite3StatementLike as StatementLike } from '../../drivers/better-sqlite3.js'
import type { SqlDatabase, SqlExecutor } from '../core/executor.js'
import { inSavepoint } from '../core/savepoint.js'

export type { BetterSqlite3Like }

const statementCaches = new WeakMap<BetterSqlite3Like, Map<string, StatementLike>>()
/** Transactions Idem opened or queued on a connection, chained so that two never interleave on it. */
const queues = new WeakMap<BetterSqlite3Like, { tail: Promise<unknown>; pending: number }>()
/** Connections whose transaction Idem opened, as seen from inside that transaction's function. */
const insideOwn = new AsyncLocalStorage<ReadonlySet<BetterSqlite3Like>>()
/** Connections in a transaction Idem opened (seen from anywhere). */
const owned = new WeakSet<BetterSqlite3Like>()

export function betterSqlite3Executor(db: BetterSqlite3Like): SqlExecutor {
  let cache = statementCaches.get(db)
  if (cache === undefined) {
    cache = new Map()
    statementCaches.set(db, cache)
  }
  const statements = cache
  return {
    dialect: 'sqlite',
    async execute(sql, params) {
      let statement = statements.get(sql)
      if (statement === undefined) {
        statement = db.prepare(sql)
        if (statements.size < 200) statements.set(sql, statement)
      }
      if (statement.reader) {
        const rows = statement.all(...params) as Record<string, unknown>[]
        return { rows, affectedRows: rows.length }
      }
      return { rows: [], affectedRows: statement.run(...params).changes }
    },
  }
}

/**
 * A better-sqlite3 `Database`. Outside a transaction, each `idem.transaction` runs BEGIN
 * IMMEDIATE … COMMIT on it; Idem's transactions on one connection run one after another (the
 * function is async, and a connection has one transaction at a time), and a SqliteStore on the
 * same connection waits for them. In one process, share one connection: better-sqlite3 waits for
 * a lock synchronously, so a second connection to the same file in the same process would block
 * the event loop on the write lock until busy_timeout while the holder cannot commit. Separate
 * connections belong in separate processes or worker threads. Other code that uses the
 * connection while a transaction's function awaits runs inside that transaction. Inside a
 * transaction you opened (or inside the function of one Idem opened), Idem joins it under a
 * savepoint.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { fromBetterSqlite3 } from 'idem/sql'
 *
 * const db = new Database('app.db')
 * await idem.transaction(fromBetterSqlite3(db), { key, payload }, async (conn) => {
 *   conn.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?').run(10, 'acc-1')
 * })
 * ```
 */
export function fromBetterSqlite3<D extends BetterSqlite3Like>(db: D): SqlDatabase<D> {
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function' || typeof db.exec !== 'function') {
    throw new TypeError('fromBetterSqlite3 needs a better-sqlite3 Database')
  }
  const sql = betterSqlite3Executor(db)
  // What a transaction Idem opens on `db` sees as its own connections when no other is open.
  const onlyThis: ReadonlySet<BetterSqlite3Like> = new Set([db])
  return {
    dialect: 'sqlite',
    transaction(fn) {
      const outer = insideOwn.getStore()
      if (outer?.has(db) || (db.inTransaction && !owned.has(db))) {
        return inSavepoint(sql, () => fn(db, sql), 'fromBetterSqlite3')
      }
      let queue = queues.get(db)
      if (queue === undefined) {
        queue = { tail: Promise.resolve(), pending: 0 }
        queues.set(db, queue)
      }
      const own = outer === undefined ? onlyThis : new Set([...outer, db])
      const open = () => insideOwn.run(own, () => ownTransaction(db, sql, fn))
      // Always behind the tail, even a settled one: BEGIN never runs in the caller's own tick.
      const run = queue.tail.then(open)
      queue.pending++
      const settled = queue
      queue.tail = run.then(
        () => {
          settled.pending--
        },
        () => {
          settled.pending--
        },
      )
      return run
    },
  }
}

/** BEGIN IMMEDIATE, `fn`, COMMIT on `db`; ROLLBACK when `fn` throws. */
async function ownTransaction<D extends BetterSqlite3Like, R>(
  db: D,
  sql: SqlExecutor,
  fn: (tx: D, sql: SqlExecutor) => Promise<R>,
): Promise<R> {
  db.exec('BEGIN IMMEDIATE')
  owned.add(db)
  try {
    const result = await fn(db, sql)
    db.exec('COMMIT')
    return result
  } catch (error) {
    // SQLite may already have rolled back on its own (a full disk, an interrupt).
    if (db.inTransaction) db.exec('ROLLBACK')
    throw error
  } finally {
    owned.delete(db)
  }
}

/**
 * Settles when the transactions Idem has open or queued on `db` are done; undefined when there are
 * none, or when called from inside one of them. SqliteStore awaits it before using a connection
 * it shares with transaction mode, so that a run() claim never lands inside someone's transaction.
 */
export function transactionsInFlight(db: object): Promise<unknown> | undefined {
  const queue = queues.get(db as BetterSqlite3Like)
  if (queue === undefined || queue.pending === 0) return undefined
  if (insideOwn.getStore()?.has(db as BetterSqlite3Like)) return undefined
  return queue.tail
}
