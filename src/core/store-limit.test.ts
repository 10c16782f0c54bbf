import { describe, expect, it, vi } from 'vitest'
import { ErrorCode, type IdempotencyError } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { ManualClock } from '../testing/manual-clock.js'
import { Idempotency } from './idempotency.js'

// A store whose own result limit is below the Idempotency's maxResultBytes: the function ran, so
// the key must be settled (with RESULT_TOO_LARGE) instead of left claimed until its lease lapses
// and a duplicate runs the function a second time.
describe('a result over the store limit but under maxResultBytes', () => {
  function setup() {
    const clock = new ManualClock()
    const store = new MemoryStore({ clock: clock.now, maxResultBytes: 1024 })
    const idem = new Idempotency({ store, maxResultBytes: 64 * 1024, lease: '1s' })
    return { clock, idem }
  }

  it('completes the key with RESULT_TOO_LARGE, so no duplicate runs the function again', async () => {
    const { clock, idem } = setup()
    const storeErrors: unknown[] = []
    idem.on('store_error', (event) => storeErrors.push(event.error))
    const big = 'x'.repeat(4096)
    const fn = vi.fn(async () => big)

    const first = await idem.run({ key: 'big' }, fn).catch((error: IdempotencyError & { value?: unknown }) => error)
    expect((first as IdempotencyError).code).toBe(ErrorCode.RESULT_TOO_LARGE)
    expect((first as { value?: unknown }).value).toBe(big)
    expect(storeErrors).toHaveLength(1)

    clock.advance(5_000) // far past the lease: an unsettled claim would be taken over here
    const again = await idem.run({ key: 'big' }, fn).catch((error: IdempotencyError) => error)
    expect((again as IdempotencyError).code).toBe(ErrorCode.RESULT_TOO_LARGE)
    expect(fn).toHaveBeenCalledTimes(1)
  })
})
