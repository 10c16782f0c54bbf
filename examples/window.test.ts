// The time-window dedup example runs as written, and docs/window.md shows it as it is.

import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../test/services.js'
import { collect } from './window.js'

if ((await requireService('Mosquitto', 1883)) && (await requireService('Redis', 6379))) {
  describe('examples/window.ts', () => {
    it('stores a reading sent twice once, the repeat dropped by the window before the claim', async () => {
      const name = isolatedName('idem_example_window')
      const url = 'mqtt://127.0.0.1:1883'
      try {
        const { stored, outcomes } = await collect({
          url,
          clientId: name,
          topic: `${name}/telemetry`,
          prefix: `idem:test:${name}:`,
        })
        expect(stored).toEqual(['sensor-7/r-1001: 21.5', 'sensor-7/r-1002: 21.6'])
        expect(outcomes).toEqual([
          'r-1001: executed',
          'r-1001: replayed (window: a repeat within the dedup window)',
          'r-1002: executed',
        ])
      } finally {
        // A clean start with expiry 0 removes the session the example left on the broker.
        const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: name, clean: true })
        await client.endAsync()
      }
    })
  })
}

it('docs/window.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../docs/window.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/window\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./window.ts', import.meta.url), 'utf8'))
})
