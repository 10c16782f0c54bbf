// The NATS JetStream example runs as written, and docs/brokers/nats.md shows it as it is.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'nats'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../test/services.js'
import { payOnce } from './nats.js'

if (await requireService('NATS JetStream', 4222)) {
  describe('examples/brokers/nats.ts', () => {
    it('charges once a payment published three times, one copy past the duplicate window', async () => {
      const nc = await connect({ servers: '127.0.0.1:4222' })
      const stream = isolatedName('IDEM_EXAMPLE_PAYMENTS')
      const dir = mkdtempSync(join(tmpdir(), 'idem-nats-example-'))
      try {
        const { duplicates, charged } = await payOnce(nc, stream, join(dir, 'idem.db'))
        expect(duplicates).toEqual([false, true, false])
        expect(charged).toEqual(['order-1'])
        const jsm = await nc.jetstreamManager()
        expect((await jsm.streams.info(stream)).state.messages).toBe(2)
      } finally {
        const jsm = await nc.jetstreamManager()
        await jsm.streams.delete(stream).catch(() => {})
        await jsm.streams.delete(`${stream}_DEAD`).catch(() => {})
        await nc.close()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}

it('docs/brokers/nats.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/nats.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/nats\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./nats.ts', import.meta.url), 'utf8'))
})
