// The RocketMQ example runs as written, and docs/brokers/rocketmq.md shows it as it is.

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { createTopics } from '../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import { renewOnce } from './rocketmq.js'

if (await requireService('RocketMQ', SERVICES.RocketMQ.port)) {
  describe('examples/brokers/rocketmq.ts', () => {
    it('grants a renewal sent twice as a transactional message once, its database write applied once', async () => {
      await createTopics('Renewals:TRANSACTION', 'RenewalsDead')
      const { granted, paidUntil } = await renewOnce(SERVICES.RocketMQ.url, isolatedName('example'))
      expect(granted).toEqual(['sub-42'])
      expect(paidUntil).toEqual({ paid_until: '2027-12-07' })
    }, 60_000)
  })
}

it('docs/brokers/rocketmq.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/rocketmq.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/rocketmq\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./rocketmq.ts', import.meta.url), 'utf8'))
})
