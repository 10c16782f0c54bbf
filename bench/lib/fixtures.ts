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
export const TTL_MS = 86_400_000

export const produce = async (): Promise<typeof VALUE> => VALUE
export const mustNotRun = (): never => {
  throw new Error('bench: a duplicate executed its function')
}
