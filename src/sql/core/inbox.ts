// What a store gives transaction mode: its claim and its completion as statements that run on the
// caller's transaction (through a SqlExecutor) instead of on the store's own connection.

import type { BeginResult, IdempotencyStore } from '../../contract/types.js'
import type { SqlDialect, SqlExecutor, TransactionEdges } from './executor.js'

export interface Inbox {
  readonly dialect: SqlDialect
  /** Where the records are (for error messages). */
  readonly table: string
  /**
   * `begin` inside the transaction `sql` runs in. A racer's uncommitted claim of the same id makes
   * this wait for that transaction to end; it then sees the committed record (or none, if it rolled
   * back). Nothing of a claim is visible to anyone else before commit. With `edges` (a
   * transaction not begun yet), it may begin it in the same round trip, and then calls
   * `edges.begun()`.
   */
  claim(
    sql: SqlExecutor,
    id: string,
    fingerprint: string,
    token: string,
    leaseMs: number,
    ttlMs: number,
    edges?: TransactionEdges,
  ): Promise<BeginResult>
  /**
   * `complete` inside the same transaction: true when the claim was still this token's. With
   * `edges`, it may commit the transaction in the same round trip, and then calls
   * `edges.committed()`; it never commits when it returns false.
   */
  complete(
    sql: SqlExecutor,
    id: string,
    token: string,
    result: string,
    ttlMs: number,
    edges?: TransactionEdges,
  ): Promise<boolean>
}

/** A store whose records can be written inside the caller's SQL transaction. */
export interface InboxStore extends IdempotencyStore {
  readonly inbox: Inbox
}

export function hasInbox(store: IdempotencyStore): store is InboxStore {
  return typeof (store as Partial<InboxStore>).inbox?.claim === 'function'
}
