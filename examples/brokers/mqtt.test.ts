// The MQTT example runs as written, and docs/brokers/mqtt.md shows it as it is.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../test/services.js'
import { payOnce } from './mqtt.js'

if (await requireService('Mosquitto', 1883)) {
  describe('examples/brokers/mqtt.ts', () => {
    it('charges a payment published twice once', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'idem-mqtt-example-'))
      const name = isolatedName('idem_example_mqtt')
      const url = 'mqtt://127.0.0.1:1883'
      try {
        const { charged } = await payOnce(join(dir, 'idem.db'), { url, clientId: name, topic: `${name}/payments` })
        expect(charged).toEqual(['order-1'])
      } finally {
        // A clean start with expiry 0 removes the session the example left on the broker.
        const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: name, clean: true })
        await client.endAsync()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}

it('docs/brokers/mqtt.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/brokers/mqtt.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/brokers\/mqtt\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./mqtt.ts', import.meta.url), 'utf8'))
})
