// A redelivered payment message must extend a subscription by exactly one year, on SQLite and on
// PostgreSQL, in transaction mode. Run it: npx tsx examples/subscription-renewal/main.ts
// Exits 1 if Idem extended any subscription by anything but one year (or, under
// IDEM_REQUIRE_SERVICES=1, if PostgreSQL is unreachable).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgres } from './postgres.js'
import { type CaseOutcome, ONE_YEAR_LATER, PAID_UNTIL, renewSubscriptions, USERS } from './scenario.js'
import { openSqlite } from './sqlite.js'

const PG_URL = process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

function table(outcomes: readonly CaseOutcome[]): string {
  const header = [
    'user',
    'what happened',
    'deliveries',
    'naive paid_until',
    'idem paid_until',
    'payments naive/idem',
    'idem, per delivery',
  ]
  const rows = outcomes.map((o) => [
    o.userId,
    o.what,
    String(o.deliveries),
    o.naiveState.paidUntil,
    o.idemState.paidUntil,
    `${o.naiveState.payments} / ${o.idemState.payments}`,
    o.idem.join(', '),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** True when every subscription Idem handled went from PAID_UNTIL to exactly one year later, paid once. */
function extendedOnce(outcomes: readonly CaseOutcome[]): boolean {
  return outcomes.every((o) => o.idemState.paidUntil === ONE_YEAR_LATER && o.idemState.payments === 1)
}

async function onSqlite(): Promise<CaseOutcome[]> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-renewal-'))
  try {
    const db = await openSqlite(dir, USERS, PAID_UNTIL)
    try {
      return await renewSubscriptions(db)
    } finally {
      await db.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function onPostgres(): Promise<CaseOutcome[] | 'unreachable'> {
  let db: Awaited<ReturnType<typeof openPostgres>>
  try {
    db = await openPostgres(PG_URL, `renewal_${process.pid}`, USERS, PAID_UNTIL)
  } catch (error) {
    if ((error as { code?: string }).code === 'ECONNREFUSED') return 'unreachable'
    throw error
  }
  try {
    return await renewSubscriptions(db)
  } finally {
    await db.close() // drops the example's schemas
  }
}

let ok = true
console.log(`Every subscription starts paid until ${PAID_UNTIL}; each user pays once, for one year.\n`)
for (const [name, run] of [
  ['SQLite (temporary file, one connection: copies consumed at once take turns on it)', onSqlite],
  ['PostgreSQL', onPostgres],
] as const) {
  const outcomes = await run()
  if (outcomes === 'unreachable') {
    console.log(`${name}: SKIPPED, no server at ${PG_URL}\n`)
    // CI sets IDEM_REQUIRE_SERVICES=1: there a missing server is a failure, never a silent skip.
    if (process.env.IDEM_REQUIRE_SERVICES === '1') ok = false
    continue
  }
  const pass = extendedOnce(outcomes)
  ok &&= pass
  console.log(`${name}\n${table(outcomes)}`)
  console.log(pass ? `idem: every subscription extended exactly once, to ${ONE_YEAR_LATER}\n` : 'idem: WRONG\n')
}
console.log('naive: each duplicate delivery ran the handler again: one more payment row, one more year.')
console.log('       (dan: its transaction rolled back on the crash too; then both redeliveries added a year.)')
console.log('idem:  idem.transaction(db, { key: message.id, payload }, fn) commits its record with the writes:')
console.log(
  '       duplicates replay the stored renewal; a crash before COMMIT rolls back both, so the retry executes.',
)
process.exitCode = ok ? 0 : 1
