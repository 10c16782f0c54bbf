// The last-policy cache of the shared pipeline: a call's overrides resolve to the same policy as
// a fresh resolution would, whether or not the previous call set the same ones.

import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { Idempotency } from './idempotency.js'
import type { RunInput } from './options.js'

describe('per-call overrides', () => {
  it('resolve each call by its own options, however the calls alternate', async () => {
    const store = new MemoryStore()
    const idem = new Idempotency({ store, scope: 'base', ttl: '1h' })
    const seen: string[] = []
    const calls: RunInput[] = [
      { key: 'a', scope: 'one', onInProgress: 'reject', failOpen: false },
      { key: 'b', scope: 'one', onInProgress: 'reject', failOpen: false },
      { key: 'c', scope: 'two', onInProgress: 'reject', failOpen: false },
      { key: 'd', scope: 'two', ttl: '2h' },
      { key: 'e' },
      { key: 'f', ttl: '2h' },
      { key: 'g', scope: 'one', onInProgress: 'reject', failOpen: false },
    ]
    for (const input of calls) {
      await idem.run(input, (ctx) => {
        seen.push(`${ctx.scope}:${ctx.key}`)
      })
    }
    expect(seen).toEqual(['one:a', 'one:b', 'two:c', 'two:d', 'base:e', 'base:f', 'one:g'])
    const ttlOf = async (key: string, scope: string) => {
      const record = await store.get(idem.recordId(key, scope))
      return record === null ? undefined : Math.round((record.expiresAt - Date.now()) / 3_600_000)
    }
    expect(await ttlOf('c', 'two')).toBe(1)
    expect(await ttlOf('d', 'two')).toBe(2)
    expect(await ttlOf('e', 'base')).toBe(1)
    expect(await ttlOf('f', 'base')).toBe(2)
    expect(await ttlOf('g', 'one')).toBe(1)
  })
})
