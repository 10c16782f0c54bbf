// The store conformance suite (docs/architecture.md, "The store contract"): one set of behaviours that every store, ours or a
// user's, must show. It is framework-neutral: pass your runner's `describe` and `it`.

import assert from 'node:assert/strict'
import type { BeginResult, IdempotencyStore } from '../contract/types.js'
import { assertLeaseLost, describeLimitsAndFailures, FP, OTHER_FP } from './conformance-limits.js'

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
  /**
   * How far, in ms, the `leaseUntil` an acquiring `begin` reports may be from the deadline the
   * store judges the lease by. Default 0: exact. A store whose claim is one command that cannot
   * read the store's clock (RedisStore's `SET … NX`) reports the caller's estimate instead; the
   * lease itself still runs on the store's clock.
   */
  acquiredLeaseToleranceMs?: number
}

export interface TestApi {
  describe(name: string, fn: () => void): void
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void
}

/**
 * The store conformance suite: every behaviour of the store contract, run against a fresh store
 * per test. Any runner with `describe` and `it` fits.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest'
 * import { describeStoreConformance, ManualClock } from 'idem/testing'
 *
 * describeStoreConformance(
 *   {
 *     name: 'MyStore',
 *     create: () => {
 *       const clock = new ManualClock()
 *       const store = new MyStore({ clock: clock.now })
 *       return { store, advance: (ms) => clock.advance(ms), cleanup: () => store.close() }
 *     },
 *   },
 *   { describe, it },
 * )
 * ```
 */
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
        const drift = Math.abs(second.leaseUntil - first.leaseUntil)
        assert.ok(drift <= (options.acquiredLeaseToleranceMs ?? 0), `the holder's lease, ${drift} ms apart`)
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

    describeLimitsAndFailures(
      { test, acquire, L, T, maxBytes, racers, nativeExpiry: options.nativeExpiry === true },
      api,
    )
  })
}
