// An order moves from pending to completed, and only then are loyalty points added: a duplicate
// 'order-completed' message adds no points. The state-guard technique, on its own: the order's
// status is the record that the message was handled, so no idempotency key is stored at all.

import { defineStateMachine } from 'idem/guards'
import type { SqlDatabase } from 'idem/sql'

export interface OrderCompleted {
  messageId: string
  orderId: string
  completedAt: string
}

/** The order flow, declared once. A transition outside it throws before touching the database. */
export const orderStatus = defineStateMachine({
  table: 'orders',
  id: 'id',
  column: 'status',
  transitions: { pending: ['completed', 'cancelled'], completed: ['refunded'] },
})

/**
 * The consumer. The guard's UPDATE and the points go in one transaction: exactly one delivery
 * moves the order to completed, and only that one adds points. Duplicates, concurrent or late,
 * find the order already completed and add nothing.
 *
 * When to wrap this in `idem.transaction(db, { key: message.messageId, payload }, (tx, ctx) => …)`
 * and pass `ctx.sql` to the guard: when a message has effects the status cannot witness (a
 * message that is not a state change, such as "add 50 bonus points"), or when a duplicate must
 * get the first delivery's result back rather than just "already done".
 */
export async function onOrderCompleted(db: SqlDatabase<unknown>, message: OrderCompleted) {
  return db.transaction(async (_tx, sql) => {
    const moved = await orderStatus.transition(sql, message.orderId, 'pending', 'completed', {
      set: { completed_at: message.completedAt },
    })
    // already_applied (a duplicate), not_allowed (e.g. cancelled), not_found: no points, ack the message.
    if (moved.outcome !== 'applied') return moved
    const orderId = sql.dialect === 'postgres' ? '$1' : '?'
    await sql.execute(
      `INSERT INTO loyalty_points (order_id, customer_id, points)
       SELECT id, customer_id, total_cents / 100 FROM orders WHERE id = ${orderId}`,
      [message.orderId],
    )
    return moved
  })
}

/** The business tables. No UNIQUE (order_id) on the ledger, so that only the guard stands in the way here. */
export const SCHEMA = [
  `CREATE TABLE orders (
     id text PRIMARY KEY, customer_id text NOT NULL, total_cents integer NOT NULL,
     status text NOT NULL, completed_at text)`,
  'CREATE TABLE loyalty_points (order_id text NOT NULL, customer_id text NOT NULL, points integer NOT NULL)',
  `INSERT INTO orders (id, customer_id, total_cents, status) VALUES
     ('o-1', 'c-1', 1250, 'pending'), ('o-2', 'c-2', 4599, 'pending'),
     ('o-3', 'c-1', 899, 'pending'), ('o-4', 'c-3', 3000, 'pending')`,
]

export interface OrderReport {
  orderId: string
  status: string
  /** Points credited for this order, from the ledger. */
  points: number
  /** Ledger rows for this order: more than one means points were added twice. */
  credits: number
  deliveries: number
  applied: number
  duplicates: number
  refused: number
}

/**
 * The scenario: o-4 is cancelled first; then each order's 'order-completed' message arrives two
 * or three times, some copies at once (separate transactions, racing on the same row).
 */
export async function runOrderPoints(db: SqlDatabase<unknown>): Promise<OrderReport[]> {
  await db.transaction(async (_tx, sql) => {
    for (const statement of SCHEMA) await sql.execute(statement, [])
    await orderStatus.transition(sql, 'o-4', 'pending', 'cancelled')
  })
  const deliver = async (orderId: string) => {
    const message = { messageId: `completed:${orderId}`, orderId, completedAt: '2026-03-01T12:00:00Z' }
    return { orderId, outcome: (await onOrderCompleted(db, message)).outcome }
  }
  const delivered: { orderId: string; outcome: string }[] = []
  // The copies in one wave arrive at once: separate transactions racing on the same order row.
  for (const wave of [['o-1', 'o-2', 'o-2', 'o-2', 'o-3', 'o-4'], ['o-1', 'o-3', 'o-4'], ['o-3']]) {
    delivered.push(...(await Promise.all(wave.map(deliver))))
  }

  const { rows } = await db.transaction((_tx, sql) =>
    sql.execute(
      `SELECT o.id, o.status, count(p.order_id) AS credits, coalesce(sum(p.points), 0) AS points
       FROM orders o LEFT JOIN loyalty_points p ON p.order_id = o.id
       GROUP BY o.id, o.status ORDER BY o.id`,
      [],
    ),
  )
  return rows.map((row) => {
    const orderId = String(row.id)
    const seen = delivered.filter((d) => d.orderId === orderId).map((d) => d.outcome)
    const count = (...outcomes: string[]) => seen.filter((o) => outcomes.includes(o)).length
    return {
      orderId,
      status: String(row.status),
      points: Number(row.points),
      credits: Number(row.credits),
      deliveries: seen.length,
      applied: count('applied'),
      duplicates: count('already_applied'),
      refused: count('not_allowed', 'not_found'),
    }
  })
}
