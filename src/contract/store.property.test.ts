import Database from 'better-sqlite3'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ModelHarness, storeMatchesModel } from '../../test/support/contract/record-model.test-helper.js'
import { LeaseLostError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { SqliteStore } from '../stores/sqlite/sqlite-store.js'
import { ManualClock } from '../testing/manual-clock.js'
import type { IdempotencyStore } from './types.js'

const RUNS = Number(process.env.IDEM_PROPERTY_RUNS ?? 500)

function memoryHarness(start: number): ModelHarness {
  const clock = new ManualClock(start)
  const store = new MemoryStore({ clock: clock.now })
  return { store, advance: (ms) => clock.advance(ms), close: () => store.close() }
}

function sqliteHarness(start: number): ModelHarness {
  const clock = new ManualClock(start)
  const db = new Database(':memory:')
  const store = new SqliteStore({ client: db, clock: clock.now })
  store.ensureSchema()
  return {
    store,
    advance: (ms) => clock.advance(ms),
    close: async () => {
      await store.close()
      db.close()
    },
  }
}

/** Planted bug: `complete` with a stale token overwrites the new owner's claim. */
function withStolenComplete(harness: ModelHarness): ModelHarness {
  const store: IdempotencyStore = Object.create(harness.store)
  store.complete = async (id, token, result, ttl) => {
    try {
      await harness.store.complete(id, token, result, ttl)
    } catch (error) {
      const record = await harness.store.get(id)
      if (!(error instanceof LeaseLostError) || record?.token == null) throw error
      await harness.store.complete(id, record.token, result, ttl)
    }
  }
  return { ...harness, store }
}

/** Planted bug: `release` drops the record without checking who owns it. */
function withUncheckedRelease(harness: ModelHarness): ModelHarness {
  const store: IdempotencyStore = Object.create(harness.store)
  store.release = async (id) => {
    await harness.store.delete(id)
  }
  return { ...harness, store }
}

describe('record state machine (model-based)', () => {
  it('MemoryStore behaves as the reference model under random operations by several workers', async () => {
    await fc.assert(storeMatchesModel(memoryHarness), { numRuns: RUNS })
  })

  it('SqliteStore behaves as the reference model under random operations by several workers', async () => {
    await fc.assert(storeMatchesModel(sqliteHarness), { numRuns: RUNS })
  })

  it.each([
    ['a complete that ignores a stale token', withStolenComplete],
    ['a release that ignores the owner token', withUncheckedRelease],
  ])('finds a planted bug: %s', async (_name, plant) => {
    const result = await fc.check(
      storeMatchesModel((start) => plant(memoryHarness(start))),
      { numRuns: RUNS },
    )
    expect(result.failed).toBe(true)
  })
})
