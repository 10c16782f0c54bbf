// The order-points example on SQLite and PostgreSQL, checked against the rows it leaves behind.

import { describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { type ExampleDatabase, openPostgres, openSqlite } from './databases.js'
import { runOrderPoints } from './order-points.js'

function describeOrderPoints(name: string, open: () => ExampleDatabase | Promise<ExampleDatabase>): void {
  describe(`order-points example on ${name}`, () => {
    it('completes each order once and credits its points once, however often the message arrives', async () => {
      const database = await open()
      try {
        const reports = await runOrderPoints(database.db)
        // Read back from the database itself, not from what the example reports.
        const query = (text: string) => database.db.transaction(async (_tx, sql) => (await sql.execute(text, [])).rows)
        const orders = await query('SELECT id, status, total_cents FROM orders ORDER BY id')
        const credits = await query('SELECT order_id, points FROM loyalty_points ORDER BY order_id')
        expect(orders.map((o) => o.status)).toEqual(['completed', 'completed', 'completed', 'cancelled'])
        // One credit per completed order, of its total in whole units; none for the cancelled one.
        expect(credits.map((c) => ({ order: c.order_id, points: Number(c.points) }))).toEqual(
          orders
            .filter((o) => o.status === 'completed')
            .map((o) => ({ order: o.id, points: Math.floor(Number(o.total_cents) / 100) })),
        )

        // Every message was delivered more than once; exactly one delivery per completed order applied.
        for (const report of reports) {
          expect(report.deliveries, report.orderId).toBeGreaterThan(1)
          expect(report.applied, report.orderId).toBe(report.status === 'completed' ? 1 : 0)
          expect(report.applied + report.duplicates + report.refused, report.orderId).toBe(report.deliveries)
        }
      } finally {
        await database.close()
      }
    })
  })
}

describeOrderPoints('SQLite', openSqlite)
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeOrderPoints('PostgreSQL', () => openPostgres(SERVICES.PostgreSQL.url))
}
