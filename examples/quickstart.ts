// The README's example, run in CI: one payment message delivered twice, executed once.
// Run it: npx tsx examples/quickstart.ts

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Idempotency, type RunResult } from 'idem'
import { SqliteStore } from 'idem/sqlite'

interface PaymentMessage {
  id: string
  body: { customerId: string; amount: number }
}

export async function quickstart(file: string): Promise<RunResult<{ extendedBy: string }>[]> {
  const db = new Database(file)
  const store = new SqliteStore({ client: db })
  store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'billing', ttl: '24h', lease: '30s' })

  let extensions = 0
  const extendSubscription = (_customerId: string, { years }: { years: number }) => {
    extensions += years
    return { extendedBy: `${years}y` }
  }

  const message: PaymentMessage = { id: 'pay-2026-0042', body: { customerId: 'c-7', amount: 120 } }
  const outcomes: RunResult<{ extendedBy: string }>[] = []
  for (const delivery of [message, message]) {
    const out = await idem.run({ key: delivery.id, payload: delivery.body }, async (ctx) => {
      // ctx.derivedKey('psp') is what you would send to a payment provider as its idempotency key.
      void ctx.derivedKey('psp')
      return extendSubscription(delivery.body.customerId, { years: 1 })
    })
    outcomes.push(out)
  }
  if (extensions !== 1) throw new Error(`expected one extension, got ${extensions}`)
  await store.close()
  db.close()
  return outcomes
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = mkdtempSync(join(tmpdir(), 'idem-quickstart-'))
  try {
    for (const out of await quickstart(join(dir, 'idem.db'))) console.log(out.status, out.value)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
