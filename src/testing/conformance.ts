// The store conformance suite (docs/architecture.md, "The store contract"): one set of behaviours that every store, ours or a
// user's, must show. It is framework-neutral: pass your runner's `describe` and `it`.

import assert from 'node:assert/strict'
import type { BeginResult, IdempotencyStore } from '../contract/types.js'

export interface StoreHarness {
  store: IdempotencyStore
  /** Move the store's clock forward by `ms`. A store on a real clock sleeps a little longer than `ms`. */
  advance(ms: number): void | Promise<void>
  /** Called after each test, even a failed one: drop tables, close clients. */
  cleanup?(): void | Promise<void>
}

export interface ConformanceOptions {
  /** Shown in the suite's title. */
  name: string
  /** A fresh, isolated store for each test (its own table, key prefix or database). */
  create(): StoreHarness | Promise<StoreHarness>
  /** Lease used by the tests. Default 1000 ms; use a few hundred ms for a store on a real clock. */
  leaseMs?: number
  /** Retention used by the tests; must exceed 3 leases. Default 10 000 ms. */
  ttlMs?: number
  /** The store's configured result limit. Default 1 MiB. */
  maxResultBytes?: number
  /** Concurrent `begin` calls in the racers test. Default 50. */
  racers?: number
  /** Per-test timeout handed to `it`, in ms. Default 20 000. */
  timeoutMs?: number
  /**
   * The backend removes expired records by itself (Redis key expiry), so `sweep` has nothing left
   * to remove: the sweep test then checks that expired records are gone and that `sweep` answers.
   */
  nativeExpiry?: boolean
}

export interface TestApi {
  describe(name: string, fn: () => void): void
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void
}

const FP = 'fingerprint-a'
const OTHER_FP = 'fingerprint-b'

export function describeStoreConformance(options: ConformanceOptions, api: TestApi): void {
  const L = options.leaseMs ?? 1000
  const T = options.ttlMs ?? 10_000
  const maxBytes = options.maxResultBytes ?? 1024 * 1024
  const racers = options.racers ?? 50
  if (T <= 3 * L) throw new RangeError('ConformanceOptions.ttlMs must exceed three leases')

  const test = (name: string, body: (h: StoreHarness) => Promise<void>): void => {
    api.it(
      name,
      async () => {
        const harness = await options.create()
        try {
          await body(harness)
        } finally {
          await harness.cleanup?.()
        }
      },
      options.timeoutMs ?? 20_000,
    )
  }
  const acquire = async (store: IdempotencyStore, id: string, fp = FP) => {
    const begun = await store.begin(id, fp, L, T)
    assert.equal(begun.outcome, 'acquired', `begin("${id}") should acquire, got ${begun.outcome}`)
    return begun as Extract<BeginResult, { outcome: 'acquired' }>
  }

  api.describe(`store conformance: ${options.name}`, () => {
    api.describe('begin', () => {
      test('acquires a new key with attempt 1 and an owner token', async ({ store }) => {
        const begun = await acquire(store, 'new')
        assert.equal(begun.attempt, 1)
        assert.equal(begun.recovered, false)
        assert.ok(typeof begun.token === 'string' && begun.token.length > 0)
        const record = await store.get('new')
        assert.equal(record?.state, 'in_progress')
        assert.equal(record?.fingerprint, FP)
        assert.equal(record?.token, begun.token)
        assert.equal(record?.attempt, 1)
      })

      test('reports in_progress with the holder lease while it is live', async ({ store }) => {
        const first = await acquire(store, 'busy')
        const second = await store.begin('busy', FP, L, T)
        assert.equal(second.outcome, 'in_progress')
        if (second.outcome !== 'in_progress') return
        assert.equal(second.leaseUntil, first.leaseUntil)
        assert.ok(second.retryAfterMs > 0 && second.retryAfterMs <= L, `retryAfterMs ${second.retryAfterMs}`)
        assert.equal(second.attempt, 1)
      })

      test('reports mismatch for another fingerprint and changes nothing', async ({ store }) => {
        const first = await acquire(store, 'mm')
        assert.deepEqual(await store.begin('mm', OTHER_FP, L, T), { outcome: 'mismatch', state: 'in_progress' })
        await store.complete('mm', first.token, '"done"', T)
        assert.deepEqual(await store.begin('mm', OTHER_FP, L, T), { outcome: 'mismatch', state: 'completed' })
        const replay = await store.begin('mm', FP, L, T)
        assert.equal(replay.outcome, 'completed')
      })

      test('replays the stored result byte-identically', async ({ store }) => {
        const result = JSON.stringify({ text: 'quotes " \\ newline \n tab \t emoji 💳 nul \u0000 é', n: 1.5e-7 })
        const begun = await acquire(store, 'replay')
        await store.complete('replay', begun.token, result, T)
        const again = await store.begin('replay', FP, L, T)
        assert.equal(again.outcome, 'completed')
        if (again.outcome !== 'completed') return
        assert.equal(again.result, result)
        assert.equal(again.attempt, 1)
        if (again.expiresInMs !== undefined) {
          assert.ok(again.expiresInMs > 0 && again.expiresInMs <= T, `expiresInMs ${again.expiresInMs}`)
        }
        const record = await store.get('replay')
        assert.equal(record?.state, 'completed')
        assert.equal(record?.result, result)
        assert.equal(record?.token, null)
      })

      test('keeps ids apart that differ only in case or trailing spaces', async ({ store }) => {
        const ids = ['Key', 'key', 'KEY', 'k', 'k ', 'k  ', ' k']
        const tokens = new Set<string>()
        for (const id of ids) tokens.add((await acquire(store, id)).token)
        assert.equal(tokens.size, ids.length)
        for (const id of ids) assert.equal((await store.get(id))?.id, id)
      })

      test('takes over a lapsed lease with a new token and attempt + 1', async (h) => {
        const first = await acquire(h.store, 'lapse')
        await h.advance(L + 1)
        const second = await acquire(h.store, 'lapse')
        assert.equal(second.recovered, true)
        assert.equal(second.attempt, 2)
        assert.notEqual(second.token, first.token)
        assert.equal((await h.store.get('lapse'))?.attempt, 2)
      })

      test('does not take over a lapsed lease for another fingerprint', async (h) => {
        await acquire(h.store, 'lapse-mm')
        await h.advance(L + 1)
        assert.deepEqual(await h.store.begin('lapse-mm', OTHER_FP, L, T), { outcome: 'mismatch', state: 'in_progress' })
      })
    })

    api.describe('fencing', () => {
      test('rejects complete, release and extend with a wrong token', async ({ store }) => {
        const begun = await acquire(store, 'wrong')
        await assertLeaseLost(store.complete('wrong', 'not-the-token', '1', T))
        await assertLeaseLost(store.release('wrong', 'not-the-token'))
        await assertLeaseLost(store.extend('wrong', 'not-the-token', L))
        const record = await store.get('wrong')
        assert.equal(record?.state, 'in_progress')
        assert.equal(record?.token, begun.token)
      })

      test('rejects every operation on a key that has no record', async ({ store }) => {
        await assertLeaseLost(store.complete('nothing', 'token', '1', T))
        await assertLeaseLost(store.release('nothing', 'token'))
        await assertLeaseLost(store.extend('nothing', 'token', L))
        assert.equal(await store.get('nothing'), null)
      })

      test('rejects a second complete and keeps the first result', async ({ store }) => {
        const begun = await acquire(store, 'twice')
        await store.complete('twice', begun.token, '"first"', T)
        await assertLeaseLost(store.complete('twice', begun.token, '"second"', T))
        await assertLeaseLost(store.release('twice', begun.token))
        assert.equal((await store.get('twice'))?.result, '"first"')
      })

      test('fences the old owner after a takeover', async (h) => {
        const old = await acquire(h.store, 'fence')
        await h.advance(L + 1)
        const current = await acquire(h.store, 'fence')
        await assertLeaseLost(h.store.extend('fence', old.token, L))
        await assertLeaseLost(h.store.complete('fence', old.token, '"old"', T))
        await assertLeaseLost(h.store.release('fence', old.token))
        await h.store.complete('fence', current.token, '"new"', T)
        assert.equal((await h.store.get('fence'))?.result, '"new"')
      })

      test('fences the old owner after the record expired and was created again', async (h) => {
        const old = await acquire(h.store, 'reborn')
        await h.advance(T + 1)
        const reborn = await acquire(h.store, 'reborn')
        assert.equal(reborn.attempt, 1)
        assert.equal(reborn.recovered, false)
        await assertLeaseLost(h.store.complete('reborn', old.token, '"old"', T))
        await assertLeaseLost(h.store.extend('reborn', old.token, L))
        await assertLeaseLost(h.store.release('reborn', old.token))
        const record = await h.store.get('reborn')
        assert.equal(record?.state, 'in_progress')
        assert.equal(record?.token, reborn.token)
      })
    })

    api.describe('release and extend', () => {
      test('release drops the claim so the next begin executes afresh', async ({ store }) => {
        const begun = await acquire(store, 'rel')
        await store.release('rel', begun.token)
        assert.equal(await store.get('rel'), null)
        const again = await acquire(store, 'rel')
        assert.equal(again.attempt, 1)
        assert.equal(again.recovered, false)
      })

      test('extends the same claim twice in a row', async ({ store }) => {
        const begun = await acquire(store, 'ext-twice')
        const first = await store.extend('ext-twice', begun.token, L)
        const second = await store.extend('ext-twice', begun.token, L)
        assert.ok(second >= first, 'a second extend never shortens the lease')
        await store.complete('ext-twice', begun.token, '"ok"', T)
      })

      test('extend keeps a live claim past its first deadline', async (h) => {
        const begun = await acquire(h.store, 'ext')
        await h.advance(Math.floor((L * 2) / 3))
        const leaseUntil = await h.store.extend('ext', begun.token, L)
        assert.ok(leaseUntil > begun.leaseUntil, 'the new deadline is later')
        await h.advance(Math.floor((L * 2) / 3))
        const again = await h.store.begin('ext', FP, L, T)
        assert.equal(again.outcome, 'in_progress', 'the extended lease is still live')
        await h.store.complete('ext', begun.token, '"ok"', T)
      })
    })

    api.describe('expiry', () => {
      test('keeps a completed record for its ttl', async (h) => {
        const begun = await acquire(h.store, 'keep')
        await h.store.complete('keep', begun.token, '"kept"', T)
        await h.advance(Math.floor(T / 2))
        assert.equal((await h.store.begin('keep', FP, L, T)).outcome, 'completed')
      })

      test('forgets a completed record after its ttl, for any fingerprint', async (h) => {
        const begun = await acquire(h.store, 'forget')
        await h.store.complete('forget', begun.token, '"gone"', T)
        await h.advance(T + 1)
        assert.equal(await h.store.get('forget'), null)
        const again = await acquire(h.store, 'forget', OTHER_FP)
        assert.equal(again.attempt, 1)
        assert.equal(again.recovered, false)
      })

      test('get returns null and delete reports false for an expired record', async (h) => {
        const begun = await acquire(h.store, 'old')
        await h.store.complete('old', begun.token, '1', T)
        await h.advance(T + 1)
        assert.equal(await h.store.get('old'), null)
        assert.equal(await h.store.delete('old'), false)
      })
    })

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
        if (options.nativeExpiry) {
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
          const results = await Promise.all(
            Array.from({ length: racers }, () => store.begin(`race-${round}`, FP, L, T)),
          )
          const acquired = results.filter((r) => r.outcome === 'acquired')
          assert.equal(acquired.length, 1, `round ${round}: ${acquired.length} racers acquired`)
          assert.equal(results.filter((r) => r.outcome === 'in_progress').length, racers - 1)
        }
      })

      test('lets exactly one racer take over a lapsed lease', async (h) => {
        await acquire(h.store, 'race-takeover')
        await h.advance(L + 1)
        const results = await Promise.all(
          Array.from({ length: racers }, () => h.store.begin('race-takeover', FP, L, T)),
        )
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
      })
    })
  })
}

function hasCode(code: string) {
  return (error: unknown): boolean => {
    assert.equal((error as { code?: unknown })?.code, code, `expected ${code}, got ${String(error)}`)
    return true
  }
}

async function assertLeaseLost(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, hasCode('LEASE_LOST'))
}
