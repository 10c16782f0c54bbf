// The transaction-mode example runs as written, and docs/brokers.md shows it as it is.

import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { recordPaymentsOnce } from './transaction-mode.js'

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('examples/brokers/transaction-mode.ts', () => {
    it('writes one ledger row for a payment published twice', async () => {
      const redis = new Redis(SERVICES.Redis.port, '127.0.0.1')
      const stream = isolatedName('idem_example_ledger')
      try {
        const { ledger } = await recordPaymentsOnce(redis, stream)
        expect(ledger).toEqual([expect.objectContaining({ order_id: 'order-1', amount_cents: 4200 })])
        expect(await redis.xlen(stream)).toBe(2)
      } finally {
        await redis.del(stream, `${stream}:dead`)
        redis.disconnect()
      }
    })
  })
}

it('docs/brokers.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/transaction-mode\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./transaction-mode.ts', import.meta.url), 'utf8'))
})
