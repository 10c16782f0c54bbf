// Run it: npx tsx examples/order-points/main.ts [postgres://user@host:5432/db]
// SQLite (a temporary file) by default; PostgreSQL in a throwaway schema when given its URL.
// Exits non-zero if any order got its points twice.

import { type ExampleDatabase, openPostgres, openSqlite } from './databases.js'
import { type OrderReport, runOrderPoints } from './order-points.js'

function format(name: string, reports: OrderReport[]): string {
  const header = ['order', 'status', 'deliveries', 'applied', 'duplicates', 'refused', 'points']
  const rows = reports.map((r) => [r.orderId, r.status, r.deliveries, r.applied, r.duplicates, r.refused, r.points])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)))
  const line = (cells: unknown[]) =>
    cells.map((c, i) => (typeof c === 'number' ? String(c).padStart(widths[i] ?? 0) : String(c).padEnd(widths[i] ?? 0)))
  const sum = (pick: (r: OrderReport) => number) => reports.reduce((n, r) => n + pick(r), 0)
  return [
    `order-points on ${name}: each 'order-completed' message delivered 2-3 times, some at once`,
    '',
    line(header).join('  '),
    ...rows.map((row) => line(row).join('  ')),
    '',
    `${sum((r) => r.deliveries)} deliveries: ${sum((r) => r.applied)} applied, ${sum((r) => r.duplicates)} duplicates ` +
      `(already_applied), ${sum((r) => r.refused)} refused (not_allowed: the order was cancelled)`,
  ].join('\n')
}

const url = process.argv[2]
const database: ExampleDatabase = url === undefined ? openSqlite() : await openPostgres(url)
try {
  const reports = await runOrderPoints(database.db)
  console.log(format(database.name, reports))
  const twice = reports.filter((r) => r.credits > 1)
  if (twice.length > 0) {
    console.error(`FAILED: points added more than once for ${twice.map((r) => r.orderId).join(', ')}`)
    process.exitCode = 1
  } else {
    console.log('no order got points twice')
  }
} finally {
  await database.close()
}
