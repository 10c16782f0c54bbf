// examples/outbox.ts runs as written, and docs/brokers/outbox.md shows it as it is.

import { readFileSync } from 'node:fs'
import { expect, it, vi } from 'vitest'

it('docs/brokers/outbox.md shows examples/outbox.ts as it is', () => {
  const doc = readFileSync(new URL('../docs/brokers/outbox.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./outbox.ts', import.meta.url), 'utf8')
  expect(doc).toContain(`<!-- example: examples/outbox.ts -->\n\`\`\`ts\n${example}\`\`\``)
})

it('ships once for a message the broker delivers twice', async () => {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {})
  try {
    await import('./outbox.js')
    expect(log.mock.calls).toEqual([['2 deliveries, 1 shipment']])
  } finally {
    log.mockRestore()
  }
})
