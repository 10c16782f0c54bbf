// The business data in PostgreSQL: the subscriptions, the payment effect (extend by a year and
// write a ledger line, one statement), and the audit that finds the damage. The tables live in a
// schema of the run's own. The effect has no idempotency of its own: a ledger line per execution.

import type pg from 'pg'
import type { Customer, PaymentMessage } from '../incident/payments.js'
import type { Audit } from '../incident/subscriptions.js'

export type { Audit }

/** Create the run's schema, its two tables and one subscription per customer. */
export async function createBilling(pool: pg.Pool, schema: string, customers: readonly Customer[]): Promise<void> {
  const s = quote(schema)
  await pool.query(`CREATE SCHEMA ${s}`)
  await pool.query(`
    CREATE TABLE ${s}.subscriptions (
      customer_id text PRIMARY KEY,
      paid_until_at_start date NOT NULL,
      paid_until date NOT NULL
    );
    CREATE TABLE ${s}.payments_applied (
      seq bigserial PRIMARY KEY,
      message_id text NOT NULL,
      payment_id text NOT NULL,
      customer_id text NOT NULL,
      years integer NOT NULL,
      paid_until date NOT NULL
    );
    CREATE INDEX ON ${s}.payments_applied (message_id);
  `)
  await pool.query(
    `INSERT INTO ${s}.subscriptions SELECT c, d::date, d::date FROM unnest($1::text[], $2::text[]) AS t(c, d)`,
    [customers.map((c) => c.customerId), customers.map((c) => c.paidUntil)],
  )
}

export async function dropBilling(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${quote(schema)} CASCADE`)
}

/**
 * The effect a payment asks for: extend the customer's subscription by `years` and keep a ledger
 * line, in one statement (so one transaction). Run it twice and the customer gets two years.
 */
export function paymentEffect(
  schema: string,
): (db: Pick<pg.ClientBase, 'query'>, m: PaymentMessage) => Promise<{ paidUntil: string }> {
  const s = quote(schema)
  const text = `
    WITH extended AS (
      UPDATE ${s}.subscriptions SET paid_until = (paid_until + make_interval(years => $1::int))::date
      WHERE customer_id = $2 RETURNING paid_until
    )
    INSERT INTO ${s}.payments_applied (message_id, payment_id, customer_id, years, paid_until)
    SELECT $3, $4, $2, $1::int, paid_until FROM extended
    RETURNING paid_until::text AS paid_until`
  return async (db, m) => {
    const { rows } = await db.query<{ paid_until: string }>(text, [m.years, m.customerId, m.messageId, m.paymentId])
    const row = rows[0]
    if (row === undefined) throw new Error(`no subscription for ${m.customerId}`)
    return { paidUntil: row.paid_until }
  }
}

/** Distinct payments applied, and payments applied more than once. */
export async function ledgerCounts(pool: pg.Pool, schema: string): Promise<{ applied: number; doubled: number }> {
  const { rows } = await pool.query<{ applied: string; doubled: string }>(
    `SELECT count(*) AS applied, count(*) FILTER (WHERE n > 1) AS doubled
     FROM (SELECT count(*) AS n FROM ${quote(schema)}.payments_applied GROUP BY message_id) AS per_message`,
  )
  return { applied: Number(rows[0]?.applied ?? 0), doubled: Number(rows[0]?.doubled ?? 0) }
}

/** Compare each subscription with what its customer paid for: one term per distinct paymentId. */
export async function auditBilling(
  pool: pg.Pool,
  schema: string,
  published: readonly PaymentMessage[],
): Promise<Audit> {
  const paid = new Map<string, Map<string, number>>()
  for (const m of published) {
    const payments = paid.get(m.customerId) ?? new Map<string, number>()
    payments.set(m.paymentId, m.years)
    paid.set(m.customerId, payments)
  }
  const s = quote(schema)
  const { rows } = await pool.query<{ customer_id: string; start: string; now: string }>(
    `SELECT customer_id, paid_until_at_start::text AS start, paid_until::text AS now FROM ${s}.subscriptions`,
  )
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
    const expected = addYears(row.start, expectedYears)
    if (row.now === expected) continue
    audit.wronglyExtended++
    const diff = yearsBetween(expected, row.now)
    if (diff > 0) audit.extraYears += diff
    else audit.missingYears -= diff
  }
  const applied = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.payments_applied`)
  audit.paymentsApplied = Number(applied.rows[0]?.n ?? 0)
  return audit
}

function quote(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsafe schema name ${name}`)
  return `"${name}"`
}

/** `YYYY-MM-DD` + whole years (start dates are never 29 February). */
function addYears(date: string, years: number): string {
  return `${String(Number(date.slice(0, 4)) + years).padStart(4, '0')}${date.slice(4)}`
}

/** Whole years from `a` to `b`, which must fall on the same day of the year. */
function yearsBetween(a: string, b: string): number {
  if (a.slice(4) !== b.slice(4)) throw new Error(`${b} is not a whole number of years from ${a}`)
  return Number(b.slice(0, 4)) - Number(a.slice(0, 4))
}
