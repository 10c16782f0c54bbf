// What a store gives transaction mode: its claim and its completion as statements that run on the
// caller's transaction (through a SqlExecutor) instead of on the store's own connection.

import type { BeginResult, IdempotencyStore } from '../../contract/types.js'
import type { SqlDialect, SqlExecutor, TransactionEdges } from './executor.js'

/**
 * What `Inbox.claim` answers: a store's begin outcome, where `settled` marks a claim written as
 * completed with the `settledResult` it was given (see `claim`).
 */
export type InboxClaim = BeginResult | (Extract<BeginResult, { outcome: 'acquired' }> & { settled: true })

export interface Inbox {
  readonly dialect: SqlDialect
  /** Where the records are (for error messages). */
  readonly table: string
  /** Whether `claim` may settle a new key (see `settledResult`); absent: never, and none is passed. */
  readonly settles?: boolean
  /**
   * `begin` inside the transaction `sql` runs in. A racer's uncommitted claim of the same id makes
   * this wait for that transaction to end; it then sees the committed record (or none, if it rolled
   * back). Nothing of a claim is visible to anyone else before commit. With `edges` (a
   * transaction not begun yet), it may begin it in the same round trip, and then calls
   * `edges.begun()`.
   *
   * With `settledResult` (what a function that returns nothing stores), a store may write a key
   * that has no record as completed with that result at once, and answer `settled: true`: a
   * function that returns nothing then needs no completion, only COMMIT, and a value replaces the
   * result (`complete` with `settled`). A store does so only where no other session can read the
   * row before it commits: PostgreSQL has no dirty reads, and SQLite's other connections read
   * committed pages; MySQL and MariaDB sessions at READ UNCOMMITTED would read it, so MysqlStore
   * never settles. The caller keeps its own nested calls on the same transaction from reading
   * it (see transaction.ts).
   */
  claim(
    sql: SqlExecutor,
    id: string,
    fingerprint: string,
    token: string,
    leaseMs: number,
    ttlMs: number,
    edges?: TransactionEdges,
    settledResult?: string,
  ): Promise<InboxClaim>
  /**
   * `complete` inside the same transaction: true when the claim was still this token's. With
   * `edges`, it may commit the transaction in the same round trip, and then calls
   * `edges.committed()`; it never commits when it returns false. With `settled` (the claim
   * answered `settled: true`), it replaces the result of the record this transaction wrote.
   */
  complete(
    sql: SqlExecutor,
    id: string,
    token: string,
    result: string,
    ttlMs: number,
    edges?: TransactionEdges,
    settled?: boolean,
  ): Promise<boolean>
}

/** A store whose records can be written inside the caller's SQL transaction. */
export interface InboxStore extends IdempotencyStore {
  readonly inbox: Inbox
}

export function hasInbox(store: IdempotencyStore): store is InboxStore {
  return typeof (store as Partial<InboxStore>).inbox?.claim === 'function'
}
