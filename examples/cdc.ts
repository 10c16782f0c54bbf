// Change data capture with the checkpoint in the same transaction: every transaction committed on
// the source MariaDB (a shop's orders) is applied to a reporting copy in another database, as one
// target transaction that also stores its idempotency record and the binlog position. Kill the
// process anywhere and start it again: it resumes after the last committed source transaction,
// and one read twice is replayed, never applied twice.
// Run it: npx tsx examples/cdc.ts (needs a MariaDB with --log-bin --binlog-format=ROW on
// 127.0.0.1:3310, or IDEM_CDC_SOURCE=host:port, and the target MariaDB on 127.0.0.1:3306).

import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { consumeBinlog, type RowChange } from 'idem/cdc'
import { MysqlStore } from 'idem/mysql'
import mysql from 'mysql2/promise'

export interface Setup {
  source: { host: string; port: number; user: string }
  targetUrl: string
  /** Prefix of the target's tables, so that runs do not meet. */
  prefix: string
}

export async function replicate({ source, targetUrl, prefix }: Setup) {
  const shop = await mysql.createConnection(source)
  await shop.query('CREATE DATABASE IF NOT EXISTS shop')
  await shop.query(
    'CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, total INT NOT NULL, status VARCHAR(16) NOT NULL)',
  )

  const pool = mysql.createPool(targetUrl)
  const store = new MysqlStore({ client: pool, table: `${prefix}_records` })
  await store.ensureSchema()
  await pool.query(
    `CREATE TABLE ${prefix}_orders (id INT PRIMARY KEY, total INT NOT NULL, status VARCHAR(16) NOT NULL)`,
  )

  const start = () =>
    consumeBinlog<mysql.PoolConnection>({
      source,
      client: pool, // the target: each source transaction becomes one transaction on this pool
      idempotency: new Idempotency({ store }), // its records live in the same database
      serverId: 4242, // unique among the source's replicas and readers
      name: 'orders-report',
      tables: ['shop.orders'],
      checkpointTable: `${prefix}_checkpoints`,
      apply: async (change: RowChange, tx) => {
        const row = (change.after ?? change.before) as { id: number; total: number; status: string }
        if (change.kind === 'delete') await tx.query(`DELETE FROM ${prefix}_orders WHERE id = ?`, [row.id])
        else
          await tx.query(`REPLACE INTO ${prefix}_orders (id, total, status) VALUES (?, ?, ?)`, [
            row.id,
            row.total,
            row.status,
          ])
      },
    })
  const caughtUp = async (consumer: Awaited<ReturnType<typeof start>>) => {
    const [[{ pos }]] = (await shop.query('SELECT @@gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]]
    while (consumer.position?.gtid !== pos) await new Promise((resolve) => setTimeout(resolve, 20))
  }

  const first = await start() // the first run starts at the end of the binlog
  await shop.beginTransaction() // two orders in one source transaction: one target transaction
  await shop.query("INSERT INTO shop.orders VALUES (1, 40, 'new'), (2, 15, 'new')")
  await shop.query("UPDATE shop.orders SET status = 'paid' WHERE id = 1")
  await shop.commit()
  await caughtUp(first)
  await first.close() // stopped (or killed): the checkpoint says where it was

  await shop.query('DELETE FROM shop.orders WHERE id = 2') // written while nobody reads
  const second = await start() // resumes at the checkpoint, not at the end
  await caughtUp(second)
  await second.close()

  const [copy] = await pool.query(`SELECT id, total, status FROM ${prefix}_orders ORDER BY id`)
  await shop.query('DROP DATABASE shop')
  await shop.end()
  await pool.end()
  return { copy, first: first.stats, second: second.stats }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [host = '127.0.0.1', port = '3310'] = (process.env.IDEM_CDC_SOURCE ?? '').split(':').filter(Boolean)
  const setup = { source: { host, port: Number(port), user: 'root' }, targetUrl: 'mysql://root@127.0.0.1:3306/test' }
  console.log(await replicate({ ...setup, prefix: `cdc_example_${Date.now()}` }))
}
