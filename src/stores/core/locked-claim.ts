// The claim that SQL stores without a server-side begin function share (MySQL, SQLite) in
// transaction mode: read the row under the claim's lock, decide with the store contract, write
// the decision back. Placeholders are `?`, as both dialects bind them.

import { decideBegin } from '../../contract/transitions.js'
import type { BeginResult, IdempotencyRecord } from '../../contract/types.js'
import type { SqlExecutor } from '../../sql/core/executor.js'

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
