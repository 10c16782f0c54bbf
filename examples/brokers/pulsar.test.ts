// The Apache Pulsar example runs as written, and docs/brokers/pulsar.md shows it as it is.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { deleteTopics, uniqueTopic, waitForDrained } from '../../test/support/brokers/pulsar/pulsar.test-helper.js'
import { payOnce } from './pulsar.js'

if (await requireService('Pulsar', SERVICES.Pulsar.port)) {
  describe('examples/brokers/pulsar.ts', () => {
    it('charges once a payment published three times, and acknowledges both duplicates', async () => {
      const topic = uniqueTopic('idem-example-payments')
      const dir = mkdtempSync(join(tmpdir(), 'idem-pulsar-example-'))
      try {
        const { messageId, stored, outcomes, charged } = await payOnce(topic, join(dir, 'idem.db'), SERVICES.Pulsar.url)
        expect(charged).toEqual(['order-1'])
        // Three sends, each confirmed: Pulsar stored three distinct messages under one idem-key.
        expect(messageId).toMatch(/^[\w-]+$/)
        expect(new Set(stored).size).toBe(3)
        // The first copy ran, the two duplicates were replayed (acknowledged without running).
        expect(outcomes.slice().sort()).toEqual(['executed', 'replayed', 'replayed'])
        // The broker got every ack: nothing is left on the subscription.
        await waitForDrained(topic, 'billing')
      } finally {
        await deleteTopics([topic, `${topic}-dead`])
        rmSync(dir, { recursive: true, force: true })
      }
    }, 30_000)
  })
}

it('docs/brokers/pulsar.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/pulsar.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/pulsar\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./pulsar.ts', import.meta.url), 'utf8'))
})
