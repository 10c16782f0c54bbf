// idem/metrics on an Idempotency: every outcome of `idem_requests_total`, takeovers, store errors
// and durations, function durations, counted exactly as the traffic the test causes.

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { codeOf } from '../../../test/support/core/code-of.test-helper.js'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { samplesOf, sumOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import type { IdempotencyOptions } from '../../core/options.js'
import { ErrorCode } from '../../errors.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { ManualClock } from '../../testing/manual-clock.js'
import { idemMetrics } from './index.js'

class CardDeclined extends Error {
  override name = 'CardDeclined'
}

function setup(options: Partial<IdempotencyOptions> = {}) {
  const clock = new ManualClock()
  const store = new MemoryStore({ clock: clock.now })
  const idem = new Idempotency({ store, scope: 'billing', ...options })
  const registry = new Registry()
  const metrics = idemMetrics({ registry })
  const stop = metrics.watch(idem)
  const requests = (outcome: string, scope = 'billing') => sumOf(registry, 'idem_requests_total', { scope, outcome })
  return { clock, store, idem, registry, metrics, stop, requests }
}

/** A watched Idempotency with failOpen over a store whose calls can be made to fail. */
function failOpenOverFaultyStore() {
  const faulty = new FaultyStore(new MemoryStore())
  const registry = new Registry()
  const idem = new Idempotency({ store: faulty, failOpen: true })
  idemMetrics({ registry }).watch(idem)
  return { faulty, registry, idem }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe('idem_requests_total', () => {
  it('counts new keys as executed and duplicates as replayed, from the store and from the cache', async () => {
    const { idem, requests, registry } = setup({ cache: { maxEntries: 10 } })
    for (const key of ['a', 'b', 'c']) await idem.run({ key, payload: { key } }, () => key)
    for (const key of ['a', 'b']) await idem.run({ key, payload: { key } }, () => 'not run')
    expect(await requests('executed')).toBe(3)
    expect(await requests('replayed')).toBe(2)
    expect(await sumOf(registry, 'idem_requests_total')).toBe(5)
  })

  it('counts a mismatch, an in-progress rejection (not the polls of a caller that waits), a final error and a release', async () => {
    const { idem, requests, registry } = setup({ isFinal: (error) => error instanceof CardDeclined })
    await idem.run({ key: 'm', payload: { amount: 1 } }, () => 1)
    expect(await codeOf(idem.run({ key: 'm', payload: { amount: 2 } }, () => 2))).toBe(ErrorCode.FINGERPRINT_MISMATCH)

    const gate = deferred()
    const holder = idem.run({ key: 'busy' }, () => gate.promise)
    expect(await codeOf(idem.run({ key: 'busy' }, () => 'dup'))).toBe(ErrorCode.IN_PROGRESS)
    // A caller that waits polls the key (in_progress events with waiting: true), then replays.
    let polls = 0
    idem.on('in_progress', (event) => {
      if (event.waiting) polls++
    })
    const waiter = idem.run({ key: 'busy', onInProgress: 'wait', waitTimeout: '10s' }, () => 'not run')
    await new Promise((resolve) => setTimeout(resolve, 30))
    gate.resolve()
    await holder
    expect((await waiter).status).toBe('replayed')
    expect(polls).toBeGreaterThan(0)

    await expect(
      idem.run({ key: 'declined' }, () => {
        throw new CardDeclined('no funds')
      }),
    ).rejects.toThrow('no funds')
    await expect(
      idem.run({ key: 'flaky' }, () => {
        throw new Error('timeout')
      }),
    ).rejects.toThrow('timeout')

    expect(await requests('executed')).toBe(2) // m, busy
    expect(await requests('mismatch')).toBe(1)
    expect(await requests('in_progress')).toBe(1)
    expect(await requests('replayed')).toBe(1) // the waiter
    expect(await requests('final_error')).toBe(1)
    expect(await requests('released')).toBe(1)
    expect(await sumOf(registry, 'idem_requests_total')).toBe(7)
    // A final error ran the function and is stored: its duration is observed with the executions.
    expect(await sumOf(registry, 'idem_function_duration_seconds_count', { scope: 'billing' })).toBe(3)
  })

  it('counts a takeover of a lapsed lease, and the lease lost by the worker it was taken from', async () => {
    const { idem, clock, requests, registry } = setup({ lease: '10s' })
    const gate = deferred()
    const stalled = idem.run({ key: 't' }, () => gate.promise.then(() => 'late'))
    await new Promise((resolve) => setTimeout(resolve, 5))
    clock.advance(10_001)
    expect(await idem.run({ key: 't' }, () => 'recovered')).toEqual({ status: 'executed', value: 'recovered' })
    gate.resolve()
    expect(await codeOf(stalled)).toBe(ErrorCode.LEASE_LOST)

    expect(await sumOf(registry, 'idem_lease_takeovers_total', { scope: 'billing' })).toBe(1)
    expect(await requests('executed')).toBe(1)
    expect(await requests('lease_lost')).toBe(1)
    expect(await sumOf(registry, 'idem_requests_total')).toBe(2)
  })

  it('counts failed_open and store_unavailable when the store fails before the claim', async () => {
    const faulty = new FaultyStore(new MemoryStore())
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const open = new Idempotency({ store: faulty, scope: 'open', failOpen: true })
    const closed = new Idempotency({ store: faulty, scope: 'closed' })
    metrics.watch(open)
    metrics.watch(closed)
    faulty.fail('begin', 3)
    expect(await open.run({ key: 'x' }, () => 'unprotected')).toMatchObject({ status: 'executed', failedOpen: true })
    expect(await open.run({ key: 'y' }, () => 'unprotected')).toMatchObject({ failedOpen: true })
    expect(await codeOf(closed.run({ key: 'z' }, () => 1))).toBe(ErrorCode.STORE_UNAVAILABLE)

    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope: 'open', outcome: 'failed_open' }, value: 2 },
      { labels: { scope: 'closed', outcome: 'store_unavailable' }, value: 1 },
    ])
    expect(await samplesOf(registry, 'idem_store_errors_total')).toEqual([{ labels: { operation: 'begin' }, value: 3 }])
    // Failed calls are timed too.
    expect(await sumOf(registry, 'idem_store_duration_seconds_count', { operation: 'begin' })).toBe(3)
  })

  it('counts a call whose outcome could not be stored under failOpen as failed_open, not executed', async () => {
    const { faulty, registry, idem } = failOpenOverFaultyStore()
    faulty.fail('complete', 3)
    // The caller learns that its outcome was not stored: a duplicate may run it again, as after a
    // claim that failed open. The function's duration is not observed either (no executed event).
    expect(await idem.run({ key: 'k' }, () => 1)).toEqual({ status: 'executed', value: 1, failedOpen: true })
    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope: 'default', outcome: 'failed_open' }, value: 1 },
    ])
    expect(await samplesOf(registry, 'idem_store_errors_total')).toEqual([
      { labels: { operation: 'complete' }, value: 3 },
    ])
    expect(await sumOf(registry, 'idem_function_duration_seconds_count')).toBe(0)
  })

  it('counts a failure to store an outcome that a retry got past as a store error of a call that executed', async () => {
    const { faulty, registry, idem } = failOpenOverFaultyStore()
    faulty.fail('complete', 2)
    expect(await idem.run({ key: 'k' }, () => 1)).toEqual({ status: 'executed', value: 1 })
    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope: 'default', outcome: 'executed' }, value: 1 },
    ])
    expect(await samplesOf(registry, 'idem_store_errors_total')).toEqual([
      { labels: { operation: 'complete' }, value: 2 },
    ])
  })
})

describe('idem_store_duration_seconds and idem_function_duration_seconds', () => {
  it('observe every store call by operation and every execution by scope', async () => {
    const { idem, registry } = setup()
    for (const key of ['a', 'b', 'c', 'a']) await idem.run({ key }, () => key)
    await Promise.all(idem.runMany([{ key: 'd' }, { key: 'e' }], (_ctx, i) => i))

    const count = (operation: string) => sumOf(registry, 'idem_store_duration_seconds_count', { operation })
    expect(await count('begin')).toBe(4)
    expect(await count('complete')).toBe(3)
    expect(await count('beginMany')).toBe(1)
    expect(await count('completeMany')).toBe(1)
    expect(await sumOf(registry, 'idem_store_duration_seconds_count')).toBe(9)
    const inf = await sumOf(registry, 'idem_store_duration_seconds_bucket', { operation: 'begin', le: '+Inf' })
    expect(inf).toBe(4)
    expect(await sumOf(registry, 'idem_store_duration_seconds_sum', { operation: 'begin' })).toBeGreaterThan(0)
    expect(await sumOf(registry, 'idem_function_duration_seconds_count', { scope: 'billing' })).toBe(5)
  })
})

describe('watch(idem)', () => {
  it('stops counting, and detaches its probe, once stopped', async () => {
    const { idem, registry, stop, requests } = setup()
    await idem.run({ key: 'a' }, () => 1)
    stop()
    stop() // twice is once
    await idem.run({ key: 'b' }, () => 2)
    await idem.run({ key: 'a' }, () => 2)
    expect(await requests('executed')).toBe(1)
    expect(await requests('replayed')).toBe(0)
    expect(await sumOf(registry, 'idem_store_duration_seconds_count')).toBe(2)
  })

  it('counts an Idempotency watched twice once, until both watches stop', async () => {
    const { idem, metrics, stop, requests } = setup()
    const again = metrics.watch(idem)
    await idem.run({ key: 'a' }, () => 1)
    expect(await requests('executed')).toBe(1)
    stop()
    await idem.run({ key: 'b' }, () => 1)
    expect(await requests('executed')).toBe(2)
    again()
    await idem.run({ key: 'c' }, () => 1)
    expect(await requests('executed')).toBe(2)
  })
})
