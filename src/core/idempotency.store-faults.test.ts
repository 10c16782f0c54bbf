import { describe, expect, it, vi } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import { ErrorCode, type StoreUnavailableError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'

describe('a failing store', () => {
  it('fails closed by default: STORE_UNAVAILABLE with the cause, and the function does not run', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin')
    const idem = new Idempotency({ store })
    const events: unknown[] = []
    idem.on('store_error', (event) => events.push(event))
    const fn = vi.fn()
    const error = (await idem.run({ key: 'k' }, fn).catch((e: unknown) => e)) as StoreUnavailableError
    expect(error.code).toBe(ErrorCode.STORE_UNAVAILABLE)
    expect(error.status).toBe(503)
    expect((error.cause as Error).message).toMatch(/ECONNREFUSED 127\.0\.0\.1:6399/)
    expect(fn).not.toHaveBeenCalled()
    expect(events).toMatchObject([{ operation: 'begin', failOpen: false }])
  })

  it('fails open when asked: runs unprotected, says so and counts it', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin', 1)
    const idem = new Idempotency({ store })
    const out = await idem.run({ key: 'k', failOpen: true }, () => 'ran anyway')
    expect(out).toEqual({ status: 'executed', value: 'ran anyway', failedOpen: true })
    expect(idem.failOpenExecutions).toBe(1)
  })

  it('retries a failing complete and stores the outcome once the store is back', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('complete', 2)
    const idem = new Idempotency({ store })
    expect(await idem.run({ key: 'k' }, () => 'v')).toEqual({ status: 'executed', value: 'v' })
    expect(store.calls.complete).toBe(3)
    expect((await idem.run({ key: 'k' }, () => 'again')).status).toBe('replayed')
  })

  it('keeps retrying a failing complete while the lease is held, past the first three attempts', async () => {
    const store = new FaultyStore(new MemoryStore())
    // 20 + 80 + 320 + 1000 ms of pauses: the fifth attempt succeeds, 1.4 s into a 5 s lease.
    store.fail('complete', 4)
    const idem = new Idempotency({ store, lease: '5s' })
    expect(await idem.run({ key: 'k' }, () => 'v')).toEqual({ status: 'executed', value: 'v' })
    expect(store.calls.complete).toBe(5)
    expect((await idem.run({ key: 'k' }, () => 'again')).status).toBe('replayed')
  })

  it('hands back the value when the outcome cannot be stored before the lease ends', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('complete')
    const idem = new Idempotency({ store, lease: 600 })
    const startedAt = Date.now()
    const error = (await idem
      .run({ key: 'k' }, () => ({ charged: 100 }))
      .catch((e: unknown) => e)) as StoreUnavailableError
    expect(error.code).toBe(ErrorCode.STORE_UNAVAILABLE)
    expect(error.value).toEqual({ charged: 100 })
    expect(error.message).toMatch(/ran, but its outcome could not be stored/)
    // Three attempts (20 + 80 ms apart), a fourth after 320 ms; the next pause would end past the lease.
    expect(store.calls.complete).toBe(4)
    expect(Date.now() - startedAt).toBeLessThan(600)
  })

  it('fails open on a failing complete after three attempts, without holding the caller for the lease', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('complete')
    const idem = new Idempotency({ store, lease: '30s', failOpen: true })
    const events: unknown[] = []
    idem.on('store_error', (event) => events.push(event))
    const startedAt = Date.now()
    // The outcome is not stored: the caller is told the run was unprotected.
    expect(await idem.run({ key: 'k' }, () => 'v')).toEqual({ status: 'executed', value: 'v', failedOpen: true })
    // 20 + 80 ms of pauses between the three attempts; a fail-closed run would go on for 30 s.
    expect(store.calls.complete).toBe(3)
    expect(Date.now() - startedAt).toBeLessThan(5_000)
    expect(idem.failOpenExecutions).toBe(1)
    expect(events).toMatchObject([
      { operation: 'complete', failOpen: false },
      { operation: 'complete', failOpen: false },
      { operation: 'complete', failOpen: true },
    ])
  })

  it('still throws the function error when the release fails, and the claim lapses for a retry', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('release')
    const idem = new Idempotency({ store, lease: 50 })
    const events: string[] = []
    idem.on('store_error', (event) => events.push(event.operation))
    await expect(idem.run({ key: 'k' }, () => Promise.reject(new Error('boom')))).rejects.toThrowError('boom')
    expect(events).toEqual(['release'])
    await new Promise((r) => setTimeout(r, 60))
    expect(await idem.run({ key: 'k' }, () => 'retried')).toEqual({ status: 'executed', value: 'retried' })
  })

  it('treats a closed store as unavailable', async () => {
    const store = new MemoryStore()
    await store.close()
    const idem = new Idempotency({ store })
    expect(await codeOf(idem.run({ key: 'k' }, () => 1))).toBe(ErrorCode.STORE_UNAVAILABLE)
  })

  it('passes a store argument error through as it is, never as STORE_UNAVAILABLE or fail-open', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), failOpen: true })
    const fn = vi.fn()
    await expect(idem.run({ key: 'k', fingerprint: 'f'.repeat(5000) }, fn)).rejects.toThrowError(TypeError)
    expect(fn).not.toHaveBeenCalled()
    expect(idem.failOpenExecutions).toBe(0)
  })
})
