// Between JavaScript values and MysqlStore's rows: ids and fingerprints go out as bytes (checked
// against their columns' sizes), and rows come back as records and begin outcomes.

import type { BeginResult, IdempotencyRecord, RecordState } from '../../contract/types.js'
import { MAX_RECORD_ID_LENGTH } from '../../contract/validate.js'
import { StoreUnavailableError } from '../../errors.js'

export type Row = Record<string, unknown>

/** The longest fingerprint the BLOB column holds. */
const MAX_FINGERPRINT_BYTES = 65_535

export const COLUMNS = 'id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at'

/** Ids are compared as bytes (VARBINARY(1024)); checked here so the server never truncates one. */
export function idToBytes(id: string): Buffer {
  const bytes = Buffer.from(id, 'utf8')
  if (bytes.length > MAX_RECORD_ID_LENGTH) {
    throw new TypeError(`Record id must be at most ${MAX_RECORD_ID_LENGTH} bytes in UTF-8, got ${bytes.length}`)
  }
  return bytes
}

export function fingerprintToBytes(fingerprint: string): Buffer {
  const bytes = Buffer.from(fingerprint, 'utf8')
  if (bytes.length > MAX_FINGERPRINT_BYTES) {
    throw new TypeError(`Fingerprint must be at most ${MAX_FINGERPRINT_BYTES} bytes in UTF-8, got ${bytes.length}`)
  }
  return bytes
}

/** Row `i` of result set `i` (each procedure call answers with a one-row result set). */
export function firstRow(sets: Row[][], i: number): Row {
  const row = sets[i]?.[0]
  if (row === undefined) throw new StoreUnavailableError(`MysqlStore: the procedure returned no result set ${i}`)
  return row
}

export function toBeginResult(row: Row, token: string): BeginResult {
  const outcome = text(row.outcome)
  const attempt = Number(row.attempt)
  switch (outcome) {
    case 'acquired':
      // A fresh claim is always attempt 1 and a takeover always attempt 2 or more.
      return { outcome, token, attempt, recovered: attempt > 1, leaseUntil: Number(row.lease_until) }
    case 'in_progress':
      return {
        outcome,
        leaseUntil: Number(row.lease_until),
        retryAfterMs: Math.max(0, Number(row.retry_after_ms)),
        attempt,
      }
    case 'completed':
      return { outcome, result: text(row.result), attempt, completedAt: Number(row.completed_at) }
    case 'mismatch':
      return { outcome, state: text(row.state) as RecordState }
    default:
      throw new StoreUnavailableError(`MysqlStore: unexpected begin outcome ${JSON.stringify(outcome)}`)
  }
}

export function toRecord(row: Row): IdempotencyRecord {
  return {
    id: text(row.id),
    state: text(row.state) as RecordState,
    fingerprint: text(row.fingerprint),
    token: row.token == null ? null : text(row.token),
    leaseUntil: row.lease_until == null ? null : Number(row.lease_until),
    attempt: Number(row.attempt),
    result: row.result == null ? null : text(row.result),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: Number(row.expires_at),
  }
}

/** Binary columns arrive as Buffers; decode their UTF-8 (numbers may arrive as strings too). */
export function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value ?? '')
}

export function affected(header: unknown): number {
  return Number((header as { affectedRows?: unknown } | undefined)?.affectedRows ?? 0)
}
