// Writing many completed records fast, through the store's own beginMany and completeMany (so the
// records are exactly what the store writes), several batches in flight.

import { fingerprintOf } from '../../src/core/fingerprint.js'
import { type IdempotencyStore, recordId } from '../../src/index.js'
import { LEASE_MS, PAYLOAD, SCOPE, VALUE } from '../lib/fixtures.js'

export interface FillOptions {
  /** Keys are `${prefix}${i}` for i in [from, to). */
  prefix: string
  from?: number
  to: number
  ttlMs: number
  batch?: number
  inFlight?: number
}

export async function fillCompleted(store: IdempotencyStore, options: FillOptions): Promise<void> {
  const { prefix, to, ttlMs } = options
  const batch = options.batch ?? 500
  const fingerprint = fingerprintOf(PAYLOAD)
  const result = JSON.stringify({ v: VALUE })
  let next = options.from ?? 0
  const worker = async (): Promise<void> => {
    while (next < to) {
      const start = next
      const end = Math.min(to, start + batch)
      next = end
      const items = []
      for (let i = start; i < end; i++) items.push({ id: recordId(SCOPE, `${prefix}${i}`), fingerprint })
      const begun = await store.beginMany(items, LEASE_MS, ttlMs)
      const done = items.map((item, i) => {
        const b = begun[i]
        if (b?.outcome !== 'acquired') throw new Error(`bench: filling ${item.id}: ${b?.outcome}`)
        return { id: item.id, token: b.token, result }
      })
      const outcomes = await store.completeMany(done, ttlMs)
      if (outcomes.some((o) => o !== 'completed')) throw new Error('bench: a filled record was not completed')
    }
  }
  await Promise.all(Array.from({ length: options.inFlight ?? 4 }, worker))
}
