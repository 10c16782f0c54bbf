import { describe, expect, it, vi } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { ErrorCode, type IdempotencyError, InProgressError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { ManualClock } from '../testing/manual-clock.js'
import { Idempotency } from './idempotency.js'

function setup(options: Partial<ConstructorParameters<typeof Idempotency>[0]> = {}) {
  const clock = new ManualClock()
  const store = new MemoryStore({ clock: clock.now })
  const idem = new Idempotency({ store, scope: 'billing', ...options })
  return { clock, store, idem }
}

describe('Idempotency.run', () => {
  it('executes once and replays the stored result to a duplicate', async () => {
    const { idem } = setup()
    const fn = vi.fn(async () => ({ extendedUntil: '2027-11-21' }))
    const first = await idem.run({ key: 'pay-1', payload: { amount: 100 } }, fn)
    const second = await idem.run({ key: 'pay-1', payload: { amount: 100 } }, fn)
    expect(first).toEqual({ status: 'executed', value: { extendedUntil: '2027-11-21' } })
    expect(second).toEqual({ status: 'replayed', value: { extendedUntil: '2027-11-21' } })
    expect(fn).toHaveBeenCalledTimes(1)
  })

  it('replays an undefined result as undefined', async () => {
    const { idem } = setup()
    await idem.run({ key: 'void' }, () => undefined)
    expect(await idem.run({ key: 'void' }, () => 'not run')).toEqual({ status: 'replayed', value: undefined })
  })

  it('refuses a stored result it did not write (damaged, or written by something else): never replays it, never runs', async () => {
    for (const foreign of ['{"x":1}', '{"e":null}', '[1]', '{"v":1']) {
      const store = new MemoryStore()
      const idem = new Idempotency({ store })
      const id = idem.recordId('k')
      const claim = await store.begin(id, 'f', 30_000, 60_000)
      if (claim.outcome !== 'acquired') throw new Error('expected a fresh claim')
      await store.complete(id, claim.token, foreign, 60_000)
      const fn = vi.fn()
      const error = (await idem.run({ key: 'k', fingerprint: 'f' }, fn).catch((e: unknown) => e)) as IdempotencyError
      expect(error.code, foreign).toBe(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED)
      expect(error.message).toMatch(/is not replayed/)
      expect(fn).not.toHaveBeenCalled()
    }
  })

  it('matches payloads whatever their key order', async () => {
    const { idem } = setup()
    await idem.run({ key: 'k', payload: { a: 1, b: 2 } }, () => 1)
    expect((await idem.run({ key: 'k', payload: { b: 2, a: 1 } }, () => 2)).status).toBe('replayed')
  })

  it('rejects a key reused with another payload as FINGERPRINT_MISMATCH', async () => {
    const { idem } = setup()
    await idem.run({ key: 'k', payload: { amount: 100 } }, () => 1)
    const fn = vi.fn()
    expect(await codeOf(idem.run({ key: 'k', payload: { amount: 999 } }, fn))).toBe(ErrorCode.FINGERPRINT_MISMATCH)
    expect(fn).not.toHaveBeenCalled()
  })

  it('fingerprints only the selected fields when asked', async () => {
    const { idem } = setup({ fingerprintFields: ['amount'] })
    await idem.run({ key: 'k', payload: { amount: 100, sentAt: 1 } }, () => 1)
    expect((await idem.run({ key: 'k', payload: { amount: 100, sentAt: 2 } }, () => 2)).status).toBe('replayed')
  })

  it('uses an explicit fingerprint instead of the payload', async () => {
    const { idem } = setup()
    await idem.run({ key: 'k', fingerprint: 'v1', payload: { a: 1 } }, () => 1)
    expect((await idem.run({ key: 'k', fingerprint: 'v1', payload: { a: 2 } }, () => 2)).status).toBe('replayed')
    expect(await codeOf(idem.run({ key: 'k', fingerprint: 'v2' }, () => 3))).toBe(ErrorCode.FINGERPRINT_MISMATCH)
  })

  it('keeps scopes apart', async () => {
    const { idem } = setup()
    await idem.run({ key: 'k' }, () => 'billing')
    const other = await idem.run({ key: 'k', scope: 'shipping' }, () => 'shipping')
    expect(other).toEqual({ status: 'executed', value: 'shipping' })
  })

  it('rejects an invalid key with INVALID_KEY and writes nothing', async () => {
    const { idem, store } = setup()
    const fn = vi.fn()
    for (const key of ['', 'k'.repeat(256), 'clé', 'a\tb', 42 as unknown as string]) {
      expect(await codeOf(idem.run({ key }, fn))).toBe(ErrorCode.INVALID_KEY)
    }
    expect(fn).not.toHaveBeenCalled()
    expect(store.size).toBe(0)
  })

  it('rejects an invalid scope, ttl or lease before touching the store', async () => {
    const { idem, store } = setup()
    expect(await codeOf(idem.run({ key: 'k', scope: 'tenant é' }, () => 1))).toBe(ErrorCode.INVALID_KEY)
    await expect(idem.run({ key: 'k', ttl: 'forever' }, () => 1)).rejects.toThrowError(/Invalid ttl "forever"/)
    await expect(idem.run({ key: 'k', lease: 0 }, () => 1)).rejects.toThrowError(RangeError)
    expect(store.size).toBe(0)
    expect(() => new Idempotency({ store, lease: '30 parsecs' })).toThrowError(/Invalid lease/)
    expect(() => new Idempotency({} as never)).toThrowError(/needs a store/)
  })

  it('gives the function its key, scope, attempt and a stable derived key', async () => {
    const { idem } = setup()
    let seen: { key: string; scope: string; attempt: number; recovered: boolean; derived: string } | undefined
    await idem.run({ key: 'order-42:pay' }, (ctx) => {
      seen = { ...ctx, derived: ctx.derivedKey('stripe') }
    })
    expect(seen).toMatchObject({ key: 'order-42:pay', scope: 'billing', attempt: 1, recovered: false })
    const again = new Idempotency({ store: new MemoryStore(), scope: 'billing' })
    let derivedElsewhere = ''
    await again.run({ key: 'order-42:pay' }, (ctx) => {
      derivedElsewhere = ctx.derivedKey('stripe')
      expect(ctx.derivedKey('bank')).not.toBe(derivedElsewhere)
    })
    expect(derivedElsewhere).toBe(seen?.derived)
    expect(seen?.derived).toMatch(/^idem_[A-Za-z0-9_-]{32}$/)
  })
})

describe('duplicates of a running call', () => {
  it('throws IN_PROGRESS with retryAfterMs by default', async () => {
    const { idem } = setup({ lease: '30s' })
    let finish: () => void = () => {}
    const first = idem.run({ key: 'k' }, () => new Promise<string>((resolve) => (finish = () => resolve('done'))))
    await vi.waitFor(async () => expect(await idem.store.get(idem.recordId('k'))).not.toBeNull())
    const error = await idem.run({ key: 'k' }, () => 'dup').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InProgressError)
    expect((error as InProgressError).retryAfterMs).toBe(30_000)
    finish()
    expect(await first).toEqual({ status: 'executed', value: 'done' })
  })

  it('waits and replays the outcome when onInProgress is wait', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), onInProgress: 'wait', waitTimeout: '5s' })
    const first = idem.run({ key: 'k' }, async () => {
      await new Promise((r) => setTimeout(r, 60))
      return 'done'
    })
    const dup = idem.run({ key: 'k' }, () => 'dup ran')
    expect(await dup).toEqual({ status: 'replayed', value: 'done' })
    expect(await first).toEqual({ status: 'executed', value: 'done' })
  })

  it('gives up waiting after waitTimeout with IN_PROGRESS', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), onInProgress: 'wait', waitTimeout: 50 })
    let finish: () => void = () => {}
    const first = idem.run({ key: 'k' }, () => new Promise<void>((resolve) => (finish = resolve)))
    const startedAt = Date.now()
    expect(await codeOf(idem.run({ key: 'k' }, () => 'dup'))).toBe(ErrorCode.IN_PROGRESS)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(45)
    finish()
    await first
  })
})

describe('crashed executions', () => {
  it('are taken over after the lease lapses, with attempt 2', async () => {
    const { idem, store, clock } = setup({ lease: '10s' })
    const takeovers: number[] = []
    idem.on('takeover', (event) => takeovers.push(event.attempt))
    // A worker claims the key and dies without completing or releasing.
    await store.begin(idem.recordId('k'), (await import('./fingerprint.js')).fingerprintOf(undefined), 10_000, 60_000)
    expect(await codeOf(idem.run({ key: 'k' }, () => 'too early'))).toBe(ErrorCode.IN_PROGRESS)
    clock.advance(10_001)
    let ctxSeen: { attempt: number; recovered: boolean } | undefined
    const out = await idem.run({ key: 'k' }, (ctx) => {
      ctxSeen = { attempt: ctx.attempt, recovered: ctx.recovered }
      return 'recovered'
    })
    expect(out).toEqual({ status: 'executed', value: 'recovered' })
    expect(ctxSeen).toEqual({ attempt: 2, recovered: true })
    expect(takeovers).toEqual([2])
  })
})

describe('errors from the function', () => {
  it('release the claim so that a retry executes', async () => {
    const { idem } = setup()
    const released: unknown[] = []
    idem.on('released', (event) => released.push(event.error))
    const boom = new Error('gateway timeout')
    await expect(idem.run({ key: 'k' }, () => Promise.reject(boom))).rejects.toBe(boom)
    expect(released).toEqual([boom])
    expect(await idem.run({ key: 'k' }, () => 'second try')).toEqual({ status: 'executed', value: 'second try' })
  })

  it('are stored and replayed when isFinal says so', async () => {
    class CardDeclined extends Error {
      override name = 'CardDeclined'
      constructor(readonly declineCode: string) {
        super('Card declined')
      }
    }
    const { idem } = setup({ isFinal: (e) => e instanceof CardDeclined })
    const fn = vi.fn(async () => {
      throw new CardDeclined('insufficient_funds')
    })
    await expect(idem.run({ key: 'k' }, fn)).rejects.toBeInstanceOf(CardDeclined)
    const replayed = await idem.run({ key: 'k' }, fn).catch((e: unknown) => e as Error & { declineCode?: string })
    expect(fn).toHaveBeenCalledTimes(1)
    expect(replayed).toBeInstanceOf(Error)
    expect(replayed).toMatchObject({
      name: 'CardDeclined',
      message: 'Card declined',
      declineCode: 'insufficient_funds',
    })
  })

  it('treat a throwing isFinal as not final', async () => {
    const { idem } = setup({
      isFinal: () => {
        throw new Error('bad predicate')
      },
    })
    await expect(idem.run({ key: 'k' }, () => Promise.reject(new Error('x')))).rejects.toThrowError('x')
    expect((await idem.run({ key: 'k' }, () => 'retried')).status).toBe('executed')
  })
})

describe('results that cannot be stored', () => {
  it('over the size limit: RESULT_TOO_LARGE with the value, and a duplicate does not run again', async () => {
    const { idem } = setup({ maxResultBytes: 1000 })
    const big = 'x'.repeat(2000)
    const fn = vi.fn(() => big)
    const error = (await idem.run({ key: 'k' }, fn).catch((e: unknown) => e)) as IdempotencyError & { value: unknown }
    expect(error.code).toBe(ErrorCode.RESULT_TOO_LARGE)
    expect(error.value).toBe(big)
    expect(await codeOf(idem.run({ key: 'k' }, fn))).toBe(ErrorCode.RESULT_TOO_LARGE)
    expect(fn).toHaveBeenCalledTimes(1)
  })

  it('not serialisable: RESULT_NOT_SERIALIZABLE with the value, and a duplicate does not run again', async () => {
    const { idem } = setup()
    const fn = vi.fn(() => ({ amount: 10n }))
    const error = (await idem.run({ key: 'k' }, fn).catch((e: unknown) => e)) as IdempotencyError & { value: unknown }
    expect(error.code).toBe(ErrorCode.RESULT_NOT_SERIALIZABLE)
    expect(error.value).toEqual({ amount: 10n })
    expect(await codeOf(idem.run({ key: 'k' }, fn))).toBe(ErrorCode.RESULT_NOT_SERIALIZABLE)
    expect(fn).toHaveBeenCalledTimes(1)
  })
})
