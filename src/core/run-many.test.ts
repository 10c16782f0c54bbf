import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { counted } from '../../test/support/core/counted-store.test-helper.js'
import type { IdempotencyStore } from '../contract/types.js'
import { ErrorCode, InProgressError, LeaseLostError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { SqliteStore } from '../stores/sqlite/sqlite-store.js'
import { Idempotency } from './idempotency.js'

const opened: IdempotencyStore[] = []
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => {})
})

describe.each([
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ client: ':memory:' })],
] as const)('runMany on %s', (_name, makeStore) => {
  function setup(options: { lease?: number } = {}) {
    const inner: IdempotencyStore = makeStore()
    opened.push(inner)
    const { store, calls } = counted(inner)
    return { idem: new Idempotency({ store, ...options }), calls, inner }
  }

  it('claims every key in one round trip and stores the outcomes in one more', async () => {
    const { idem, calls } = setup()
    const ran: number[] = []
    const inputs = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, payload: { i } }))
    const results = await Promise.all(
      idem.runMany(inputs, (ctx, i) => {
        ran.push(i)
        return `${ctx.key}:${i}`
      }),
    )
    expect(results).toEqual(inputs.map((input, i) => ({ status: 'executed', value: `${input.key}:${i}` })))
    expect(ran.sort((a, b) => a - b)).toEqual([...Array(10).keys()])
    expect(calls).toEqual({ beginMany: 1, completeMany: 1 })
    const again = await Promise.all(idem.runMany(inputs, () => 'never'))
    expect(again.map((r) => r.status)).toEqual(Array(10).fill('replayed'))
    expect(again[3]?.value).toBe('k3:3')
    expect(calls).toEqual({ beginMany: 2, completeMany: 1 })
  })

  it('settles each key as run would: executed, replayed, mismatch, in progress, failed', async () => {
    const { idem } = setup()
    await idem.run({ key: 'done', payload: 1 }, () => 'before')
    await idem.run({ key: 'other-payload', payload: 1 }, () => 'before')
    let finish!: () => void
    const holder = idem.run({ key: 'busy' }, () => new Promise<void>((resolve) => (finish = resolve)))
    await sleep(5)
    const settled = await Promise.allSettled(
      idem.runMany(
        [
          { key: 'fresh', payload: 1 },
          { key: 'done', payload: 1 },
          { key: 'other-payload', payload: 2 },
          { key: 'busy' },
          { key: 'fails' },
          { key: 'bad key\n' },
        ],
        (ctx) => {
          if (ctx.key === 'fails') throw new Error('boom')
          return 'now'
        },
      ),
    )
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { status: 'executed', value: 'now' } })
    expect(settled[1]).toEqual({ status: 'fulfilled', value: { status: 'replayed', value: 'before' } })
    expect(await codeOf(Promise.reject((settled[2] as PromiseRejectedResult).reason))).toBe(
      ErrorCode.FINGERPRINT_MISMATCH,
    )
    expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(InProgressError)
    expect((settled[4] as PromiseRejectedResult).reason).toMatchObject({ message: 'boom' })
    expect(await codeOf(Promise.reject((settled[5] as PromiseRejectedResult).reason))).toBe(ErrorCode.INVALID_KEY)
    finish()
    await holder
    // The failure released its claim: a retry runs afresh.
    expect(await idem.run({ key: 'fails' }, () => 'retried')).toEqual({ status: 'executed', value: 'retried' })
  })

  it('runs a key given twice once; the later copy replays', async () => {
    const { idem } = setup()
    let runs = 0
    const results = await Promise.all(
      idem.runMany([{ key: 'same' }, { key: 'same' }], () => {
        runs++
        return runs
      }),
    )
    expect(results).toEqual([
      { status: 'executed', value: 1 },
      { status: 'replayed', value: 1 },
    ])
  })

  it('stores an isFinal error and replays it', async () => {
    const { idem } = setup()
    const isFinal = (error: unknown) => (error as Error).message === 'declined'
    const [first] = idem.runMany([{ key: 'pay', isFinal }], () => {
      throw new Error('declined')
    })
    await expect(first).rejects.toThrowError('declined')
    await expect(idem.run({ key: 'pay' }, () => 'again')).rejects.toThrowError('declined')
  })

  it('fails one key whose claim was taken over, and completes the others', async () => {
    const { idem } = setup({ lease: 40 })
    const results = idem.runMany([{ key: 'slow' }, { key: 'quick-1' }, { key: 'quick-2' }], async (ctx) => {
      if (ctx.key === 'slow') {
        // Stall the event loop past the lease so renewal cannot run, then let another worker take over.
        const until = Date.now() + 80
        while (Date.now() < until) {}
        await idem.run({ key: 'slow' }, () => 'theirs')
      }
      return ctx.key
    })
    const settled = await Promise.allSettled(results)
    expect((settled[0] as PromiseRejectedResult).reason).toBeInstanceOf(LeaseLostError)
    expect(((settled[0] as PromiseRejectedResult).reason as LeaseLostError).value).toBe('slow')
    expect(settled.slice(1).map((s) => s.status)).toEqual(['fulfilled', 'fulfilled'])
    expect((await idem.run({ key: 'quick-1' }, () => 'x')).status).toBe('replayed')
  })
})

describe('runMany with a failing store', () => {
  it('fails closed on every key when the claim round trip fails', async () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store })
    store.beginMany = () => Promise.reject(new Error('connection reset'))
    const settled = await Promise.allSettled(idem.runMany([{ key: 'a' }, { key: 'b' }], () => 'ran'))
    for (const s of settled)
      expect(await codeOf(Promise.reject((s as PromiseRejectedResult).reason))).toBe('STORE_UNAVAILABLE')
  })

  it('falls back to one completion per key when completeMany fails', async () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store })
    let completes = 0
    store.completeMany = () => Promise.reject(new Error('connection reset'))
    const complete = store.complete.bind(store)
    store.complete = (...args) => {
      completes++
      return complete(...args)
    }
    const results = await Promise.all(idem.runMany([{ key: 'a' }, { key: 'b' }], (ctx) => ctx.key))
    expect(results.map((r) => r.status)).toEqual(['executed', 'executed'])
    expect(completes).toBe(2)
    expect((await idem.run({ key: 'b' }, () => 'x')).status).toBe('replayed')
  })

  it('serves keys from the local cache without a round trip', async () => {
    const { store, calls } = counted(new MemoryStore())
    const idem = new Idempotency({ store, cache: { maxEntries: 10 } })
    await Promise.all(idem.runMany([{ key: 'a' }, { key: 'b' }], (ctx) => ctx.key))
    const again = await Promise.all(idem.runMany([{ key: 'a' }, { key: 'b' }], () => 'never'))
    expect(again.map((r) => r.value)).toEqual(['a', 'b'])
    expect(calls.beginMany).toBe(1)
  })
})
