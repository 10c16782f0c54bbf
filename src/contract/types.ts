// The store contract (docs/architecture.md, "The store contract"): the few atomic primitives every backend provides.
// Policy (keys, fingerprints, encoding, retries, caching) lives in the core, never here.

export const RecordState = {
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
} as const
export type RecordState = (typeof RecordState)[keyof typeof RecordState]

/** What a store keeps per record id. Times are milliseconds since the epoch, by the store's clock. */
export interface IdempotencyRecord {
  id: string
  state: RecordState
  fingerprint: string
  /** Owner token of the current claim; null once completed. */
  token: string | null
  /** Deadline of the current claim's lease (in_progress only). */
  leaseUntil: number | null
  /** 1 for the first claim, +1 at each takeover after a lapsed lease. */
  attempt: number
  /** The stored result, exactly as passed to `complete` (completed only). */
  result: string | null
  createdAt: number
  updatedAt: number
  /** After this instant the record is gone: every operation treats it as absent. */
  expiresAt: number
}

export type BeginResult =
  | {
      outcome: 'acquired'
      token: string
      attempt: number
      /** True when this claim took over a lapsed lease from a crashed or stalled worker. */
      recovered: boolean
      leaseUntil: number
    }
  | {
      outcome: 'in_progress'
      leaseUntil: number
      /** leaseUntil minus the store's now: how long the current holder's lease still runs. */
      retryAfterMs: number
      attempt: number
    }
  | {
      outcome: 'completed'
      result: string
      attempt: number
      completedAt: number
      /**
       * How long the record is still retained, by the store's clock. Optional: a layer that caches
       * completed outcomes (TieredStore) uses it to expire its copy no later than the record.
       */
      expiresInMs?: number
    }
  | { outcome: 'mismatch'; state: RecordState }

export type BeginOutcome = BeginResult['outcome']

export interface BeginItem {
  id: string
  fingerprint: string
}

export interface CompleteItem {
  id: string
  token: string
  result: string
}

/** Per-item outcome of `completeMany`: a stale token or an oversize result fails alone. */
export type CompleteManyOutcome = 'completed' | 'lease_lost' | 'too_large'

export interface IdempotencyStore {
  /**
   * Largest result `complete` accepts, in UTF-8 bytes. Optional for stores written elsewhere;
   * Idem's own stores all say it, so that a layer above (the HTTP middleware) can refuse a
   * configuration whose responses the store could not keep.
   */
  readonly maxResultBytes?: number
  /**
   * Claim `id` atomically, in one round trip. No record (or an expired one) → a new
   * `in_progress` record, `acquired`. Live lease → `in_progress`. Lapsed lease → take over with
   * a new token and attempt + 1 (`recovered: true`). Completed → `completed` with the result.
   * Any record whose fingerprint differs → `mismatch` (nothing changes).
   */
  begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult>
  /** Store the result and mark completed, kept `ttlMs`. Throws `LeaseLostError` unless `token` owns the claim. */
  complete(id: string, token: string, result: string, ttlMs: number): Promise<void>
  /** Drop the claim so that a retry executes afresh. Throws `LeaseLostError` unless `token` owns it. */
  release(id: string, token: string): Promise<void>
  /** Renew the lease to now + `leaseMs`; returns the new deadline. Throws `LeaseLostError` unless `token` owns it. */
  extend(id: string, token: string, leaseMs: number): Promise<number>
  /** The record, or null when there is none or it expired. */
  get(id: string): Promise<IdempotencyRecord | null>
  /** Remove a record whatever its state; true when one was there. */
  delete(id: string): Promise<boolean>
  /** `begin` for many ids in one round trip; results in the order of `items`. */
  beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]>
  /** `complete` for many claims in one round trip; outcomes in the order of `items`. */
  completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]>
  /** Remove at most `limit` expired records; returns how many went. */
  sweep(limit: number): Promise<number>
  close(): Promise<void>
}
