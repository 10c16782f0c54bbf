// The business data: a subscriptions table, the payment effect, and the audit that finds the damage.

import Database from 'better-sqlite3'
import type { Customer, PaymentMessage } from './payments.js'

export type Db = InstanceType<typeof Database>

export function openSubscriptions(file: string, customers: readonly Customer[]): Db {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`
    CREATE TABLE subscriptions (
      customer_id TEXT PRIMARY KEY,
      paid_until_at_start TEXT NOT NULL,
      paid_until TEXT NOT NULL
    );
    CREATE TABLE payments_applied (
      seq INTEGER PRIMARY KEY,
      message_id TEXT NOT NULL,
      payment_id TEXT NOT NULL,
      customer_id TEXT NOT NULL,
      years INTEGER NOT NULL,
      paid_until TEXT NOT NULL
    );
  `)
  const insert = db.prepare('INSERT INTO subscriptions (customer_id, paid_until_at_start, paid_until) VALUES (?, ?, ?)')
  db.transaction(() => {
    for (const c of customers) insert.run(c.customerId, c.paidUntil, c.paidUntil)
  })()
  return db
}

/**
 * The effect a payment message asks for: extend the subscription by `years` (and keep a ledger
 * line, so that the audit can count how often the effect ran). It has no idempotency of its own.
 */
export function paymentEffect(db: Db): (message: PaymentMessage) => { paidUntil: string } {
  const extend = db.prepare(
    `UPDATE subscriptions SET paid_until = date(paid_until, '+' || ? || ' years')
     WHERE customer_id = ? RETURNING paid_until`,
  )
  const ledger = db.prepare(
    'INSERT INTO payments_applied (message_id, payment_id, customer_id, years, paid_until) VALUES (?, ?, ?, ?, ?)',
  )
  return db.transaction((m: PaymentMessage) => {
    const row = extend.get(m.years, m.customerId) as { paid_until: string } | undefined
    if (row === undefined) throw new Error(`no subscription for ${m.customerId}`)
    ledger.run(m.messageId, m.paymentId, m.customerId, m.years, row.paid_until)
    return { paidUntil: row.paid_until }
  })
}

export interface Audit {
  /** Times the effect ran (ledger lines). */
  paymentsApplied: number
  customers: number
  /** Customers whose paid_until differs from start + the years they actually paid for. */
  wronglyExtended: number
  /** Years granted beyond what was paid, summed over customers. */
  extraYears: number
  /** Years paid for but never granted (a lost payment), summed over customers. */
  missingYears: number
}

/** Compare each subscription with what its customer paid for: one term per distinct paymentId. */
export function auditSubscriptions(db: Db, published: readonly PaymentMessage[]): Audit {
  const paid = new Map<string, Map<string, number>>()
  for (const m of published) {
    const payments = paid.get(m.customerId) ?? new Map<string, number>()
    payments.set(m.paymentId, m.years)
    paid.set(m.customerId, payments)
  }
  const rows = db.prepare('SELECT customer_id, paid_until_at_start, paid_until FROM subscriptions').all() as {
    customer_id: string
    paid_until_at_start: string
    paid_until: string
  }[]
  const audit: Audit = {
    paymentsApplied: 0,
    customers: rows.length,
    wronglyExtended: 0,
    extraYears: 0,
    missingYears: 0,
  }
  for (const row of rows) {
    let expectedYears = 0
    for (const years of paid.get(row.customer_id)?.values() ?? []) expectedYears += years
    const expected = addYears(row.paid_until_at_start, expectedYears)
    if (row.paid_until === expected) continue
    audit.wronglyExtended++
    const diff = yearsBetween(expected, row.paid_until)
    if (diff > 0) audit.extraYears += diff
    else audit.missingYears -= diff
  }
  const applied = db.prepare('SELECT count(*) AS n FROM payments_applied').get() as { n: number }
  audit.paymentsApplied = applied.n
  return audit
}

/** `YYYY-MM-DD` + whole years (start dates are never 29 February). */
function addYears(date: string, years: number): string {
  const [y, rest] = [Number(date.slice(0, 4)), date.slice(4)]
  return `${String(y + years).padStart(4, '0')}${rest}`
}

/** Whole years from `a` to `b`, which must fall on the same day of the year. */
function yearsBetween(a: string, b: string): number {
  if (a.slice(4) !== b.slice(4)) throw new Error(`${b} is not a whole number of years from ${a}`)
  return Number(b.slice(0, 4)) - Number(a.slice(0, 4))
}
