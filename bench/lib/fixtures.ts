// What every benchmarked call carries: one scope, a small typical request and response, and the
// two functions (one that produces the response, one that must never run because it is a replay).

/** Scope of every benchmarked key; record ids are `5:bench:<key>`. */
export const SCOPE = 'bench'
/** A small, typical request and response. */
export const PAYLOAD = { amount: 4200, currency: 'EUR', customer: 'cus_8f3a2c' }
export const VALUE = { id: 'ch_3PqK9x', status: 'succeeded', amount: 4200 }
/** Completed keys that duplicates and cache replays cycle through (a power of two). */
export const REPLAY_KEYS = 4096
export const MASK = REPLAY_KEYS - 1
export const LEASE_MS = 30_000
/** Idem's default ttl (24 h): how long records, and the floors' claims and results, are kept. */
export const TTL_MS = 86_400_000
/**
 * A hand-written floor's claim, as long as RedisStore's claim of a new key: state and attempt,
 * three epoch-ms times, the fingerprint's length and its 43 characters, a 36-character token (127 bytes).
 */
export const FLOOR_CLAIM = `p1,${'1'.repeat(13)},${'1'.repeat(13)},${'1'.repeat(13)},43,${'f'.repeat(43)}${'t'.repeat(36)}`

export const produce = async (): Promise<typeof VALUE> => VALUE
export const mustNotRun = (): never => {
  throw new Error('bench: a duplicate executed its function')
}
