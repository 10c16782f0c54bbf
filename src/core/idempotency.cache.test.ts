import { describe, expect, it, vi } from 'vitest'
import { codeOf } from '../../test/support/core/code-of.test-helper.js'
import { FaultyStore } from '../../test/support/core/faulty-store.test-helper.js'
import { ErrorCode } from '../errors.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'

describe('local cache of completed results', () => {
  it('serves replays with no round trip to the store', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store, cache: { maxEntries: 10 } })
    const replayed: boolean[] = []
    idem.on('replayed', (event) => replayed.push(event.cached))
    await idem.run({ key: 'k', payload: { a: 1 } }, () => ({ ok: true }))
    const begins = store.calls.begin
    for (let i = 0; i < 5; i++) {
      expect(await idem.run({ key: 'k', payload: { a: 1 } }, () => 'no')).toEqual({
        status: 'replayed',
        value: { ok: true },
      })
    }
    expect(store.calls.begin).toBe(begins)
    expect(replayed).toEqual([true, true, true, true, true])
  })

  it('still reports a fingerprint mismatch from the cache', async () => {
    const idem = new Idempotency({ store: new MemoryStore(), cache: { maxEntries: 10 } })
    await idem.run({ key: 'k', payload: { a: 1 } }, () => 1)
    expect(await codeOf(idem.run({ key: 'k', payload: { a: 2 } }, () => 2))).toBe(ErrorCode.FINGERPRINT_MISMATCH)
  })

  it('fills from a replay served by the store', async () => {
    const inner = new MemoryStore()
    await new Idempotency({ store: inner }).run({ key: 'k' }, () => 'elsewhere')
    const store = new FaultyStore(inner)
    const idem = new Idempotency({ store, cache: { maxEntries: 10 } })
    await idem.run({ key: 'k' }, () => 'no')
    await idem.run({ key: 'k' }, () => 'no')
    expect(store.calls.begin).toBe(1)
  })

  it('stays within maxEntries, dropping the least recently used', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store, cache: { maxEntries: 2 } })
    for (const key of ['a', 'b', 'c']) await idem.run({ key }, () => key)
    const begins = store.calls.begin
    await idem.run({ key: 'c' }, () => 'no')
    expect(store.calls.begin).toBe(begins)
    await idem.run({ key: 'a' }, () => 'no')
    expect(store.calls.begin).toBe(begins + 1)
  })

  it('keeps no entry past the cache ttl', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const store = new FaultyStore(new MemoryStore())
      const idem = new Idempotency({ store, cache: { maxEntries: 10, ttl: '1s' } })
      await idem.run({ key: 'k' }, () => 1)
      vi.advanceTimersByTime(1001)
      await idem.run({ key: 'k' }, () => 2)
      expect(store.calls.begin).toBe(2)
    } finally {
      vi.useRealTimers()
    }
  })

  it('is off unless asked for', async () => {
    const store = new FaultyStore(new MemoryStore())
    const idem = new Idempotency({ store })
    await idem.run({ key: 'k' }, () => 1)
    await idem.run({ key: 'k' }, () => 1)
    expect(store.calls.begin).toBe(2)
  })
})
