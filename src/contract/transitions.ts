// The record state machine as pure functions, for stores that read a row and write it back
// inside one atomic section (MemoryStore, SqliteStore). Server stores express the same rules
// in one SQL statement or Lua script; the conformance suite holds them all to it.

import { LeaseLostError } from '../errors.js'
import type { BeginResult, IdempotencyRecord } from './types.js'

export interface BeginDecision {
  result: BeginResult
  /** The record to write, or null when nothing changes. */
  write: IdempotencyRecord | null
}

/** True when `record` is past its expiry: it then counts as absent for every operation. */
export function isExpired(record: IdempotencyRecord, now: number): boolean {
  return record.expiresAt <= now
}

/**
 * Decide `begin` against the current row (`existing`, already null when absent).
 *
 *   absent / expired            → new in_progress record, attempt 1            → acquired
 *   fingerprint differs         → unchanged                                     → mismatch
 *   completed                   → unchanged                                     → completed
 *   in_progress, lease live     → unchanged                                     → in_progress
 *   in_progress, lease lapsed   → new token, attempt + 1, new lease (takeover)  → acquired, recovered
 */
export function decideBegin(
  existing: IdempotencyRecord | null,
  id: string,
  fingerprint: string,
  leaseMs: number,
  ttlMs: number,
  now: number,
  newToken: () => string,
): BeginDecision {
  const leaseUntil = now + leaseMs
  // Retention never ends before the lease does, so an expired record never has a live lease.
  const expiresAt = now + Math.max(ttlMs, leaseMs)
  if (existing === null || isExpired(existing, now)) {
    const token = newToken()
    const record: IdempotencyRecord = {
      id,
      state: 'in_progress',
      fingerprint,
      token,
      leaseUntil,
      attempt: 1,
      result: null,
      createdAt: now,
      updatedAt: now,
      expiresAt,
    }
    return { result: { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil }, write: record }
  }
  if (existing.fingerprint !== fingerprint) {
    return { result: { outcome: 'mismatch', state: existing.state }, write: null }
  }
  if (existing.state === 'completed') {
    return {
      result: {
        outcome: 'completed',
        result: existing.result ?? '',
        attempt: existing.attempt,
        completedAt: existing.updatedAt,
        expiresInMs: existing.expiresAt - now,
      },
      write: null,
    }
  }
  const currentLease = existing.leaseUntil ?? 0
  if (currentLease > now) {
    return {
      result: {
        outcome: 'in_progress',
        leaseUntil: currentLease,
        retryAfterMs: currentLease - now,
        attempt: existing.attempt,
      },
      write: null,
    }
  }
  const token = newToken()
  const attempt = existing.attempt + 1
  return {
    result: { outcome: 'acquired', token, attempt, recovered: true, leaseUntil },
    write: {
      ...existing,
      token,
      attempt,
      leaseUntil,
      updatedAt: now,
      expiresAt: Math.max(existing.expiresAt, expiresAt),
    },
  }
}

/** True when `token` owns the live claim on `record` (in_progress, not expired, same token). */
export function ownsClaim(record: IdempotencyRecord | null, token: string, now: number): record is IdempotencyRecord {
  return record !== null && !isExpired(record, now) && record.state === 'in_progress' && record.token === token
}

export function completedRecord(
  record: IdempotencyRecord,
  result: string,
  ttlMs: number,
  now: number,
): IdempotencyRecord {
  return {
    ...record,
    state: 'completed',
    token: null,
    leaseUntil: null,
    result,
    updatedAt: now,
    expiresAt: now + ttlMs,
  }
}

export function extendedRecord(record: IdempotencyRecord, leaseMs: number, now: number): IdempotencyRecord {
  const leaseUntil = now + leaseMs
  return { ...record, leaseUntil, updatedAt: now, expiresAt: Math.max(record.expiresAt, leaseUntil) }
}

/** The error every store raises when a token does not own the claim it names. */
export function leaseLost(id: string, operation: 'complete' | 'release' | 'extend'): LeaseLostError {
  return new LeaseLostError(`Cannot ${operation} "${id}": the claim is no longer owned by this token`, {
    recordId: id,
  })
}
