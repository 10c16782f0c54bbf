// The encryption example runs as written, and docs/encryption.md shows it as it is.

import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { encryptionTour } from './encryption.js'

it('stores results sealed, reads them across a rotation, refuses a removed key, replays HTTP', async () => {
  const log = await encryptionTour()
  expect(log[0]).toMatch(/^stored: e1:k1:… \(\d+ bytes, card visible: false\)$/)
  expect(log.slice(1)).toEqual([
    'order-1 under k1 after the rotation: replayed',
    'order-2 written under: e1:k2:',
    'order-1 without k1: ENCRYPTION_KEY_UNKNOWN (key id k1)',
    'HTTP retry: 201, replayed true, same body true',
  ])
})

it('docs/encryption.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../docs/encryption.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/encryption\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./encryption.ts', import.meta.url), 'utf8'))
})
