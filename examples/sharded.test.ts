// The sharding example runs as written, and docs/sharded.md shows it as it is.

import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { shardedPayments } from './sharded.js'

it('replays every duplicate after a shard was added, those of moved keys included', async () => {
  const { statuses, moved, charges } = await shardedPayments()
  expect(statuses).toEqual(Array.from({ length: 12 }, () => 'replayed'))
  expect(charges).toBe(12)
  // Some keys did move, so the old placement was what recognised their duplicates.
  expect(moved).toBeGreaterThan(0)
})

it('docs/sharded.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../docs/sharded.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/sharded\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./sharded.ts', import.meta.url), 'utf8'))
})
