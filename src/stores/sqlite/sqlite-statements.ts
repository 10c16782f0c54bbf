// SqliteStore's statements and rows: prepared once per store, positional parameters, and the
// opening of a database from a file name (better-sqlite3 is loaded only then).

import { createRequire } from 'node:module'
import type { IdempotencyRecord } from '../../contract/types.js'
import type { SqliteDatabase, SqliteTransaction } from '../../drivers/better-sqlite3.js'
import { StoreUnavailableError } from '../../errors.js'

export interface Row {
  id: string
  state: 'in_progress' | 'completed'
  fingerprint: string
  token: string | null
  lease_until: number | null
  attempt: number
  result: string | null
  created_at: number
  updated_at: number
  expires_at: number
}

export function prepareStatements(db: SqliteDatabase, t: string) {
  // Parameters are positional; the comment above each statement gives their order.
  // A claim is owned by `token` while the record is in progress, holds that token and is not expired.
  const owned = `id = ? AND token = ? AND state = 'in_progress' AND expires_at > ?`
  return {
    select: db.prepare(`SELECT * FROM ${t} WHERE id = ?`),
    insert: db.prepare(
      `INSERT INTO ${t} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
       VALUES (?, 'in_progress', ?, ?, ?, 1, NULL, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    upsert: db.prepare(
      `INSERT INTO ${t} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint,
         token = excluded.token, lease_until = excluded.lease_until, attempt = excluded.attempt,
         result = excluded.result, created_at = excluded.created_at, updated_at = excluded.updated_at,
         expires_at = excluded.expires_at`,
    ),
    // complete(result, now, expiresAt, id, token, now)
    complete: db.prepare(
      `UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = ?, updated_at = ?, expires_at = ?
       WHERE ${owned}`,
    ),
    // release(id, token, now)
    release: db.prepare(`DELETE FROM ${t} WHERE ${owned}`),
    // extend(leaseUntil, now, leaseUntil, id, token, now): retention never ends before the lease.
    extend: db.prepare(
      `UPDATE ${t} SET lease_until = ?, updated_at = ?, expires_at = max(expires_at, ?) WHERE ${owned}`,
    ),
    delete: db.prepare(`DELETE FROM ${t} WHERE id = ? RETURNING expires_at`),
    // Bounded: the index on expires_at finds the oldest expired rows without a scan.
    sweep: db.prepare(
      `DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
    ),
  }
}

/** better-sqlite3's transaction wrapper, typed by the function it wraps. */
export function transaction<A extends unknown[], R>(
  db: SqliteDatabase,
  fn: (...args: A) => R,
): SqliteTransaction<A, R> {
  return db.transaction(fn) as SqliteTransaction<A, R>
}

export type SqliteStatements = ReturnType<typeof prepareStatements>

export function toRecord(row: Row | undefined): IdempotencyRecord | null {
  if (row === undefined) return null
  return {
    id: row.id,
    state: row.state,
    fingerprint: row.fingerprint,
    token: row.token,
    leaseUntil: row.lease_until,
    attempt: row.attempt,
    result: row.result,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
  }
}

export function openDatabase(filename: string): SqliteDatabase {
  const require = createRequire(import.meta.url)
  let Database: new (filename: string) => SqliteDatabase
  try {
    Database = require('better-sqlite3') as typeof Database
  } catch (cause) {
    throw new StoreUnavailableError('SqliteStore needs the better-sqlite3 package: npm install better-sqlite3', {
      cause,
    })
  }
  return new Database(filename)
}
