// What a store gives transaction mode: its claim and its completion as statements that run on the
// caller's transaction (through a SqlExecutor) instead of on the store's own connection.

import { decideBegin } from '../contract/transitions.js'
import type { BeginResult, IdempotencyRecord, IdempotencyStore } from '../contract/types.js'
import type { SqlDialect, SqlExecutor } from './executor.js'

export interface Inbox {
  readonly dialect: SqlDialect
  /** Where the records are (for error messages). */
  readonly table: string
  /**
   * `begin` inside the transaction `sql` runs in. A racer's uncommitted claim of the same id makes
   * this wait for that transaction to end; it then sees the committed record (or none, if it rolled
   * back). Nothing of a claim is visible to anyone else before commit.
   */
  claim(
    sql: SqlExecutor,
    id: string,
    fingerprint: string,
    token: string,
    leaseMs: number,
    ttlMs: number,
  ): Promise<BeginResult>
  /** `complete` inside the same transaction: true when the claim was still this token's. */
  complete(sql: SqlExecutor, id: string, token: string, result: string, ttlMs: number): Promise<boolean>
}

/** A store whose records can be written inside the caller's SQL transaction. */
export interface InboxStore extends IdempotencyStore {
  readonly inbox: Inbox
}

export function hasInbox(store: IdempotencyStore): store is InboxStore {
  return typeof (store as Partial<InboxStore>).inbox?.claim === 'function'
}

/** The UPDATE `decideUnderLock` writes a decision with; `table` is already quoted for the dialect. */
export function rewriteStatement(table: string): string {
  return `UPDATE ${table} SET state = 'in_progress', fingerprint = ?, token = ?, lease_until = ?, attempt = ?,
    result = NULL, created_at = ?, updated_at = ?, expires_at = ? WHERE id = ?`
}

/**
 * The part of a claim that stores without a begin function share (MySQL, SQLite): decide `begin`
 * against the row read under the claim's lock, and write the decision back through `rewrite`
 * (from `rewriteStatement`). `idParam` and `fingerprintParam` are the values as the dialect binds them.
 */
export async function decideUnderLock(
  sql: SqlExecutor,
  rewrite: string,
  existing: IdempotencyRecord | null,
  claim: { id: string; idParam: unknown; fingerprint: string; fingerprintParam: unknown; token: string },
  leaseMs: number,
  ttlMs: number,
  now: number,
): Promise<BeginResult> {
  const decision = decideBegin(existing, claim.id, claim.fingerprint, leaseMs, ttlMs, now, () => claim.token)
  const next = decision.write
  if (next !== null) {
    await sql.execute(rewrite, [
      claim.fingerprintParam,
      next.token,
      next.leaseUntil,
      next.attempt,
      next.createdAt,
      next.updatedAt,
      next.expiresAt,
      claim.idParam,
    ])
  }
  return decision.result
}
