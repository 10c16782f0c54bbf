import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import { ErrorCode, type LeaseLostError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'

describe('lease renewal', () => {
  it('keeps a long function claimed well past its lease', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store, lease: 200 })
    const running = idem.run({ key: 'slow' }, async () => {
      await sleep(700)
      return 'done'
    })
    await sleep(450)
    // Without renewal the 200 ms lease would have lapsed and this duplicate would take over.
    expect(await codeOf(idem.run({ key: 'slow' }, () => 'duplicate'))).toBe(ErrorCode.IN_PROGRESS)
    expect(await running).toEqual({ status: 'executed', value: 'done' })
    expect(store.calls.extend).toBeGreaterThanOrEqual(4)
  })

  it('stops renewing once the function returns', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store, lease: 30 })
    await idem.run({ key: 'quick' }, () => 'done')
    const after = store.calls.extend
    await sleep(80)
    expect(store.calls.extend).toBe(after)
  })

  it('aborts the signal and fails the complete with LEASE_LOST when another worker took over', async () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store, lease: 60 })
    const lost: string[] = []
    idem.on('lease_lost', (event) => lost.push(event.during))
    let abortedWith: unknown
    const first = idem.run({ key: 'k' }, async (ctx) => {
      // Simulate a stall: the record is taken by another worker meanwhile.
      await store.delete(idem.recordId('k'))
      await idem.run({ key: 'k' }, () => 'the other worker')
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }))
      abortedWith = ctx.signal.reason
      return 'the stalled worker'
    })
    const error = (await first.catch((e: unknown) => e)) as LeaseLostError
    expect(error.code).toBe(ErrorCode.LEASE_LOST)
    expect(error.value).toBe('the stalled worker')
    expect((abortedWith as LeaseLostError).code).toBe(ErrorCode.LEASE_LOST)
    expect(lost).toEqual(['renewal', 'complete'])
    // The new owner's result is the one kept.
    expect(await idem.run({ key: 'k' }, () => 'third')).toEqual({ status: 'replayed', value: 'the other worker' })
  })

  it('aborts the signal when renewals keep failing until the lease has run out', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store, lease: 60 })
    const out = idem.run({ key: 'k' }, async (ctx) => {
      store.fail('extend')
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }))
      return ctx.signal.reason as LeaseLostError
    })
    // Nobody took over, so the outcome is still stored; the signal told the function in time.
    const result = await out
    expect(result.value.code).toBe(ErrorCode.LEASE_LOST)
    expect(result.value.message).toMatch(/could not be reached/)
  })
})
