// SqliteStore's claim and completion on the caller's transaction. SQLite has one writer at a
// time: from the claim's INSERT on, this transaction holds the database's write lock until it
// ends, so a racer's claim waits (busy_timeout) and then reads the committed outcome. Reading,
// deciding and writing back under that lock is therefore atomic.

import type { IdempotencyRecord, RecordState } from '../../contract/types.js'
import type { Inbox } from '../../sql/core/inbox.js'
import { decideUnderLock, rewriteStatement } from '../core/locked-claim.js'

const COLUMNS = 'id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at'

export function sqliteInbox(table: string, clock: () => number): Inbox {
  const t = table
  const insert = `INSERT INTO ${t} (${COLUMNS}) VALUES (?, 'in_progress', ?, ?, ?, 1, NULL, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`
  // A key with no record settled in its claim: written completed with what a function that
  // returns nothing stores (see Inbox.claim). Nobody reads it before COMMIT: other connections
  // read committed pages, and a SqliteStore on this connection waits for Idem's transactions.
  const settle = `INSERT INTO ${t} (${COLUMNS}) VALUES (?, 'completed', ?, NULL, NULL, 1, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`
  // A value replaces the settled result; retention stays counted from the claim, as settle wrote it.
  const resettle = `UPDATE ${t} SET result = ?, updated_at = ? WHERE id = ? AND state = 'completed' AND expires_at > ?`
  const select = `SELECT ${COLUMNS} FROM ${t} WHERE id = ?`
  const rewrite = rewriteStatement(t)
  const complete = `UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = ?, updated_at = ?,
    expires_at = ? WHERE id = ? AND token = ? AND state = 'in_progress' AND expires_at > ?`
  return {
    dialect: 'sqlite',
    table: t,
    settles: true,
    async claim(sql, id, fingerprint, token, leaseMs, ttlMs, _edges, settledResult) {
      const now = clock()
      if (settledResult !== undefined) {
        const settled = await sql.execute(settle, [id, fingerprint, settledResult, now, now, now + ttlMs])
        if (settled.affectedRows === 1) {
          return { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil: now + leaseMs, settled: true }
        }
      } else {
        const expiresAt = now + Math.max(ttlMs, leaseMs)
        const inserted = await sql.execute(insert, [id, fingerprint, token, now + leaseMs, now, now, expiresAt])
        if (inserted.affectedRows === 1) {
          return { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil: now + leaseMs }
        }
      }
      const row = (await sql.execute(select, [id])).rows[0]
      const claim = { id, idParam: id, fingerprint, fingerprintParam: fingerprint, token }
      return decideUnderLock(sql, rewrite, toRecord(row), claim, leaseMs, ttlMs, clock())
    },
    async complete(sql, id, token, result, ttlMs, _edges, settled) {
      const now = clock()
      const done = settled
        ? await sql.execute(resettle, [result, now, id, now])
        : await sql.execute(complete, [result, now, now + ttlMs, id, token, now])
      return done.affectedRows === 1
    },
  }
}

function toRecord(row: Record<string, unknown> | undefined): IdempotencyRecord | null {
  if (row === undefined) return null
  const optionalNumber = (value: unknown) => (value === null || value === undefined ? null : Number(value))
  return {
    id: String(row.id),
    state: row.state as RecordState,
    fingerprint: String(row.fingerprint),
    token: row.token === null || row.token === undefined ? null : String(row.token),
    leaseUntil: optionalNumber(row.lease_until),
    attempt: Number(row.attempt),
    result: row.result === null || row.result === undefined ? null : String(row.result),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: Number(row.expires_at),
  }
}
