// MysqlStore's claim and completion on the caller's transaction. The store's begin procedure
// commits on its own, so transaction mode uses plain statements instead: an INSERT whose
// ON DUPLICATE KEY UPDATE takes the row's exclusive lock (racers queue on it, and a racer's
// uncommitted claim is waited for), then a locking read of the latest committed row, then the
// store contract's decision, written under that lock.
//
// When Idem opened the transaction on a mysql2 pool (TransactionEdges), the claim and completion
// procedures (mysql-inbox-procedures.ts) do the same work in one round trip each, the claim
// starting the transaction and the completion committing it. A database whose procedures predate
// them (ensureSchema not run since) answers ER_SP_DOES_NOT_EXIST: the statements below are used.

import type { SqlExecutor } from '../../sql/core/executor.js'
import type { Inbox } from '../../sql/core/inbox.js'
import { decideUnderLock, rewriteStatement } from '../core/locked-claim.js'
import { NOW_MS, procedureNames } from './mysql-procedures.js'
import { COLUMNS, fingerprintToBytes, idToBytes, type Row, toBeginResult, toRecord } from './mysql-rows.js'

/** ER_SP_DOES_NOT_EXIST */
const NO_SUCH_PROCEDURE = 1305

export function mysqlInbox(table: string): Inbox {
  const t = `\`${table}\``
  const insert = `INSERT INTO ${t} (${COLUMNS})
    VALUES (?, 'in_progress', ?, ?, ${NOW_MS} + ?, 1, NULL, ${NOW_MS}, ${NOW_MS}, ${NOW_MS} + GREATEST(?, ?))
    ON DUPLICATE KEY UPDATE id = id`
  // FOR UPDATE reads the latest committed version whatever the isolation level, so a caller's
  // REPEATABLE READ snapshot taken before a racer committed cannot hide the racer's record.
  const select = `SELECT ${COLUMNS}, ${NOW_MS} AS now_ms FROM ${t} WHERE id = ? FOR UPDATE`
  const rewrite = rewriteStatement(t)
  const complete = `UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = ?,
    updated_at = ${NOW_MS}, expires_at = ${NOW_MS} + ?
    WHERE id = ? AND token = ? AND state = 'in_progress' AND expires_at > ${NOW_MS}`
  const names = procedureNames(table)
  const callClaim = `CALL \`${names.claim}\`(?, ?, ?, ?, ?, ?)`
  const callComplete = `CALL \`${names.complete}\`(?, ?, ?, ?, ?)`
  // Until a call finds the procedures missing; then this inbox keeps to the statements.
  let procedures = true
  const missing = (error: unknown): boolean => {
    if ((error as { errno?: unknown })?.errno !== NO_SUCH_PROCEDURE) return false
    procedures = false
    return true
  }
  return {
    dialect: 'mysql',
    table: t,
    // No settling (Inbox.claim's settledResult is left unused): a session at READ UNCOMMITTED
    // would read a record written completed before the function's transaction commits, and could
    // replay an outcome that then rolls back. A claim here is always in progress until completed.
    async claim(sql, id, fingerprint, token, leaseMs, ttlMs, edges) {
      const idBytes = idToBytes(id)
      const fingerprintBytes = fingerprintToBytes(fingerprint)
      if (edges !== undefined && procedures) {
        const begin = edges.pending
        try {
          const row = await firstRowOfCall(edges.raw, callClaim, [
            begin,
            idBytes,
            fingerprintBytes,
            token,
            leaseMs,
            ttlMs,
          ])
          if (begin) edges.begun()
          // A duplicate's transaction (nothing written) is already committed by the procedure.
          if (Number(row.committed) === 1) edges.committed()
          return toBeginResult(row, token)
        } catch (error) {
          // Missing, the CALL did nothing (nor began anything): claim with the statements.
          if (!missing(error)) throw error
        }
      }
      await sql.execute(insert, [idBytes, fingerprintBytes, token, leaseMs, ttlMs, leaseMs])
      const row = (await sql.execute(select, [idBytes])).rows[0]
      if (row === undefined)
        throw new Error(`MysqlStore inbox: the record ${JSON.stringify(id)} vanished under its lock`)
      const existing = toRecord(row)
      if (existing.token === token) {
        return { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil: Number(existing.leaseUntil) }
      }
      const claim = { id, idParam: idBytes, fingerprint, fingerprintParam: fingerprintBytes, token }
      return decideUnderLock(sql, rewrite, existing, claim, leaseMs, ttlMs, Number(row.now_ms))
    },
    async complete(sql, id, token, result, ttlMs, edges) {
      if (edges !== undefined && !edges.pending && procedures) {
        const row = await firstRowOfCall(sql, callComplete, [
          true,
          idToBytes(id),
          Buffer.from(token, 'utf8'),
          Buffer.from(result, 'utf8'),
          ttlMs,
        ])
        // The procedure commits only when it completed the claim.
        if (Number(row.owned) !== 1) return false
        edges.committed()
        return true
      }
      const done = await sql.execute(complete, [Buffer.from(result, 'utf8'), ttlMs, idToBytes(id), token])
      return done.affectedRows === 1
    },
  }
}

/**
 * The first row of a CALL's first result set. mysql2 answers a CALL with the result sets followed
 * by an OK packet, which the pool adapter's executor passes on as rows.
 */
async function firstRowOfCall(sql: SqlExecutor, call: string, params: unknown[]): Promise<Row> {
  const { rows } = await sql.execute(call, params)
  const first = rows[0] as unknown
  const row = Array.isArray(first) ? (first[0] as Row | undefined) : (first as Row | undefined)
  if (row === undefined) throw new Error(`MysqlStore inbox: ${call} returned no row`)
  return row
}
