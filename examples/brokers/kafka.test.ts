// The Kafka example runs as written, and docs/brokers/kafka.md shows it as it is.

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { payOnce } from './kafka.js'

if (await requireService('Kafka', SERVICES.Kafka.port)) {
  describe('examples/brokers/kafka.ts', () => {
    it('charges a payment published twice once', async () => {
      const { charged } = await payOnce([SERVICES.Kafka.url], `idem-example-payments-${process.pid}-${Date.now()}`)
      expect(charged).toEqual(['acct-1'])
    }, 30_000)
  })
}

it('docs/brokers/kafka.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/kafka.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/kafka\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./kafka.ts', import.meta.url), 'utf8'))
})
