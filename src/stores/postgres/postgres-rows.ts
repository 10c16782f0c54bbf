// Rows of PostgresStore's begin function as begin outcomes (shared by the store and its inbox).

import type { BeginResult } from '../../contract/types.js'
import { StoreUnavailableError } from '../../errors.js'

export interface BeginRow {
  outcome: BeginResult['outcome']
  token: string | null
  attempt: number | null
  recovered: boolean | null
  lease_until: string | null
  retry_after_ms: string | null
  result: Buffer | null
  completed_at: string | null
  state: 'in_progress' | 'completed'
}

export function toBeginResult(row: BeginRow): BeginResult {
  switch (row.outcome) {
    case 'acquired':
      return {
        outcome: 'acquired',
        token: row.token as string,
        attempt: row.attempt as number,
        recovered: row.recovered === true,
        leaseUntil: Number(row.lease_until),
      }
    case 'in_progress':
      return {
        outcome: 'in_progress',
        leaseUntil: Number(row.lease_until),
        retryAfterMs: Number(row.retry_after_ms),
        attempt: row.attempt as number,
      }
    case 'completed':
      return {
        outcome: 'completed',
        result: row.result === null ? '' : row.result.toString('utf8'),
        attempt: row.attempt as number,
        completedAt: Number(row.completed_at),
        expiresInMs: Number(row.retry_after_ms),
      }
    case 'mismatch':
      return { outcome: 'mismatch', state: row.state }
    default:
      throw new StoreUnavailableError(`PostgresStore: unexpected begin outcome ${JSON.stringify(row?.outcome)}`)
  }
}
