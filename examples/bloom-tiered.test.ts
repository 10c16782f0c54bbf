// The Bloom filter example runs as written, and docs/tiered.md shows it as it is.

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../test/services.js'
import { chargeOrders } from './bloom-tiered.js'

if ((await requireService('PostgreSQL', 5432)) && (await requireService('Redis', 6379))) {
  describe('examples/bloom-tiered.ts', () => {
    it('skips the Redis read for new keys only, and still charges each order once', async () => {
      const name = isolatedName('idem_example_bloom')
      const report = await chargeOrders({ schema: name, prefix: `idem:test:${name}:` })
      expect(report).toEqual({
        first: ['executed', 'executed', 'executed'],
        again: ['replayed', 'replayed', 'replayed'],
        charged: ['order-1', 'order-2', 'order-3'],
        skippedOnNewKeys: 3,
        skippedAfter: 3, // the duplicates were read from Redis
      })
    })
  })
}

it('docs/tiered.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../docs/tiered.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/bloom-tiered\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./bloom-tiered.ts', import.meta.url), 'utf8'))
})
