// The gateway example runs as written (a payment retried 3 times charges once, the observed route
// switched to enforce replays, its audit log verifies), and docs/gateway.md shows its config file
// exactly as it is.

import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { runGatewayExample } from './main.js'

it('charges once, observes, then enforces, and rate-limits', async () => {
  const lines: string[] = []
  const log = (line: string) => lines.push(line)
  const original = console.log
  console.log = log // `idem stats` and `idem mode` print with console.log
  try {
    const result = await runGatewayExample(log)
    expect(result).toEqual({ charges: 1, orders: 2, refunds: 2, failures: [] })
    expect(lines).toContain('orders: observe -> enforce')
    // The audit log of the run verifies: 11 decisions and the mode switch, signed to the end.
    expect(
      lines.filter((line) => /^ {2}entries: 12, checkpoints: 2, last seq 14 \(hash [0-9a-f]{64}\)$/.test(line)),
    ).toHaveLength(1)
    expect(lines).toContain('  signed up to: seq 13')
    expect(lines.at(-1)).toMatch(/^\d+ \S+ replayed route=orders key=\S+ status=201 method=POST mode=enforce$/)
    expect(lines).toContain('OK: every entry holds')
  } finally {
    console.log = original
  }
})

it('docs/gateway.md shows examples/gateway/idem.yaml exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/gateway.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./idem.yaml', import.meta.url), 'utf8')
  expect(doc).toContain(`<!-- example: examples/gateway/idem.yaml -->\n\`\`\`yaml\n${example}\`\`\``)
})
