// The second half of the store conformance suite: administration, batches, the result size
// limit, concurrency, bad input and the closed state. conformance.ts runs it after its own sections.

import assert from 'node:assert/strict'
import type { BeginResult, IdempotencyStore } from '../contract/types.js'

export const FP = 'fingerprint-a'
export const OTHER_FP = 'fingerprint-b'

/** A store under test, its clock and its cleanup (the StoreHarness of conformance.ts). */
interface Harness {
  store: IdempotencyStore
  advance(ms: number): void | Promise<void>
}

/** What the suite's sections share: the test runner, the claim helper and the settings. */
export interface SuiteContext {
  test(name: string, body: (h: Harness) => Promise<void>): void
  acquire(store: IdempotencyStore, id: string, fp?: string): Promise<Extract<BeginResult, { outcome: 'acquired' }>>
  L: number
  T: number
  maxBytes: number
  racers: number
  nativeExpiry: boolean
}

export function describeLimitsAndFailures(
  ctx: SuiteContext,
  api: { describe(name: string, fn: () => void): void },
): void {
  const { test, acquire, L, T, maxBytes, racers } = ctx
  api.describe('administration', () => {
    test('delete removes a record whatever its state', async ({ store }) => {
      const running = await acquire(store, 'del-running')
      const done = await acquire(store, 'del-done')
      await store.complete('del-done', done.token, '1', T)
      assert.equal(await store.delete('del-running'), true)
      assert.equal(await store.delete('del-done'), true)
      assert.equal(await store.delete('del-done'), false)
      assert.equal(await store.get('del-running'), null)
      await assertLeaseLost(store.complete('del-running', running.token, '1', T))
    })

    test('sweep removes only expired records, at most limit per call', async (h) => {
      for (let i = 0; i < 5; i++) {
        const begun = await acquire(h.store, `sweep-${i}`)
        await h.store.complete(`sweep-${i}`, begun.token, '1', T)
      }
      await h.advance(T + 1)
      const live = await acquire(h.store, 'sweep-live')
      if (ctx.nativeExpiry) {
        const removed = await h.store.sweep(3)
        assert.ok(Number.isSafeInteger(removed) && removed >= 0 && removed <= 3, `sweep returned ${removed}`)
        for (let i = 0; i < 5; i++) assert.equal(await h.store.get(`sweep-${i}`), null)
      } else {
        assert.equal(await h.store.sweep(3), 3)
        assert.equal(await h.store.sweep(3), 2)
        assert.equal(await h.store.sweep(3), 0)
      }
      const record = await h.store.get('sweep-live')
      assert.equal(record?.token, live.token)
    })
  })

  api.describe('batches', () => {
    test('beginMany answers each item in order in one call', async ({ store }) => {
      const running = await acquire(store, 'b-running')
      const done = await acquire(store, 'b-done')
      await store.complete('b-done', done.token, '"d"', T)
      const results = await store.beginMany(
        [
          { id: 'b-new', fingerprint: FP },
          { id: 'b-running', fingerprint: FP },
          { id: 'b-done', fingerprint: FP },
          { id: 'b-done', fingerprint: OTHER_FP },
          { id: 'b-new', fingerprint: FP },
        ],
        L,
        T,
      )
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['acquired', 'in_progress', 'completed', 'mismatch', 'in_progress'],
      )
      const completed = results[2]
      assert.equal(completed?.outcome === 'completed' && completed.result, '"d"')
      assert.deepEqual(await store.beginMany([], L, T), [])
      await store.complete('b-running', running.token, '1', T)
    })

    test('completeMany completes owned claims and reports stale ones alone', async (h) => {
      const a = await acquire(h.store, 'c-a')
      const b = await acquire(h.store, 'c-b')
      const outcomes = await h.store.completeMany(
        [
          { id: 'c-a', token: a.token, result: '"a"' },
          { id: 'c-b', token: 'stale', result: '"b"' },
          { id: 'c-missing', token: 'stale', result: '"m"' },
        ],
        T,
      )
      assert.deepEqual(outcomes, ['completed', 'lease_lost', 'lease_lost'])
      assert.equal((await h.store.get('c-a'))?.result, '"a"')
      assert.equal((await h.store.get('c-b'))?.token, b.token)
      assert.deepEqual(await h.store.completeMany([], T), [])
    })
  })

  api.describe('result size', () => {
    test('says its limit as maxResultBytes, when it says one', async ({ store }) => {
      // Optional in the contract; a layer above reads it to refuse results the store could not keep.
      if (store.maxResultBytes !== undefined) assert.equal(store.maxResultBytes, maxBytes)
    })

    test('accepts a result of exactly the limit', async ({ store }) => {
      const begun = await acquire(store, 'at-limit')
      const result = 'x'.repeat(maxBytes)
      await store.complete('at-limit', begun.token, result, T)
      const again = await store.begin('at-limit', FP, L, T)
      assert.equal(again.outcome === 'completed' && again.result.length, maxBytes)
    })

    test('rejects an oversize result with RESULT_TOO_LARGE and keeps the claim', async ({ store }) => {
      const begun = await acquire(store, 'too-big')
      // Counted in UTF-8 bytes, not characters: each 'é' is two bytes.
      const result = 'é'.repeat(Math.floor(maxBytes / 2) + 1)
      await assert.rejects(store.complete('too-big', begun.token, result, T), hasCode('RESULT_TOO_LARGE'))
      const outcomes = await store.completeMany([{ id: 'too-big', token: begun.token, result }], T)
      assert.deepEqual(outcomes, ['too_large'])
      assert.equal((await store.get('too-big'))?.state, 'in_progress')
      await store.complete('too-big', begun.token, '"small"', T)
    })
  })

  api.describe('concurrency', () => {
    test(`lets exactly one of ${racers} concurrent racers acquire a key`, async ({ store }) => {
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(Array.from({ length: racers }, () => store.begin(`race-${round}`, FP, L, T)))
        const acquired = results.filter((r) => r.outcome === 'acquired')
        assert.equal(acquired.length, 1, `round ${round}: ${acquired.length} racers acquired`)
        assert.equal(results.filter((r) => r.outcome === 'in_progress').length, racers - 1)
      }
    })

    test('lets exactly one racer take over a lapsed lease', async (h) => {
      await acquire(h.store, 'race-takeover')
      await h.advance(L + 1)
      const results = await Promise.all(Array.from({ length: racers }, () => h.store.begin('race-takeover', FP, L, T)))
      const acquired = results.filter((r) => r.outcome === 'acquired')
      assert.equal(acquired.length, 1)
      assert.equal(acquired[0]?.outcome === 'acquired' && acquired[0].attempt, 2)
    })
  })

  api.describe('bad input and failure', () => {
    test('rejects bad arguments with a clear error and writes nothing', async ({ store }) => {
      await assert.rejects(store.begin('', FP, L, T), TypeError)
      await assert.rejects(store.begin('x'.repeat(5000), FP, L, T), TypeError)
      await assert.rejects(store.begin('bad', FP, 0, T), RangeError)
      await assert.rejects(store.begin('bad', FP, L, -1), RangeError)
      await assert.rejects(store.begin('bad', FP, Number.NaN, T), RangeError)
      await assert.rejects(store.beginMany([{ id: '', fingerprint: FP }], L, T), TypeError)
      await assert.rejects(store.sweep(0), RangeError)
      assert.equal(await store.get('bad'), null)
      const begun = await acquire(store, 'bad')
      await assert.rejects(store.complete('bad', begun.token, 42 as unknown as string, T), TypeError)
      await assert.rejects(store.complete('bad', '', '1', T), TypeError)
      assert.equal((await store.get('bad'))?.state, 'in_progress')
    })

    test('fails every operation once closed', async ({ store }) => {
      await acquire(store, 'closing')
      await store.close()
      await assert.rejects(store.begin('closing', FP, L, T))
      await assert.rejects(store.get('closing'))
      await assert.rejects(store.complete('closing', 'token', '1', T))
      await store.close()
    })
  })
}

export function hasCode(code: string) {
  return (error: unknown): boolean => {
    assert.equal((error as { code?: unknown })?.code, code, `expected ${code}, got ${String(error)}`)
    return true
  }
}

export async function assertLeaseLost(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, hasCode('LEASE_LOST'))
}
