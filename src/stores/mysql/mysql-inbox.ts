// MysqlStore's claim and completion on the caller's transaction. The store's begin procedure
// commits on its own, so transaction mode uses plain statements instead: an INSERT whose
// ON DUPLICATE KEY UPDATE takes the row's exclusive lock (racers queue on it, and a racer's
// uncommitted claim is waited for), then a locking read of the latest committed row, then the
// store contract's decision, written under that lock.

import type { Inbox } from '../../sql/core/inbox.js'
import { decideUnderLock, rewriteStatement } from '../core/locked-claim.js'
import { NOW_MS } from './mysql-procedures.js'
import { COLUMNS, fingerprintToBytes, idToBytes, toRecord } from './mysql-rows.js'

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
  return {
    dialect: 'mysql',
    table: t,
    async claim(sql, id, fingerprint, token, leaseMs, ttlMs) {
      const idBytes = idToBytes(id)
      const fingerprintBytes = fingerprintToBytes(fingerprint)
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
    async complete(sql, id, token, result, ttlMs) {
      const done = await sql.execute(complete, [Buffer.from(result, 'utf8'), ttlMs, idToBytes(id), token])
      return done.affectedRows === 1
    },
  }
}
