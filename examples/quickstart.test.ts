import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { quickstart } from './quickstart.js'

it('runs the README example: the second delivery is replayed, not executed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idem-quickstart-'))
  try {
    const outcomes = await quickstart(join(dir, 'idem.db'))
    expect(outcomes).toEqual([
      { status: 'executed', value: { extendedBy: '1y' } },
      { status: 'replayed', value: { extendedBy: '1y' } },
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
