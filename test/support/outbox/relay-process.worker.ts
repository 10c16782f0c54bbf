// One relay process, as a deployment runs it: it relays the test's outbox through a producer that
// records every publish in the `published` table (the stand-in broker, committed before the
// "confirmation"). With --crash-after N it dies by SIGKILL right after its Nth publish is
// confirmed, before the relay marks the batch sent. Otherwise it runs until the outbox has no
// pending row, then stops gracefully and exits 0.

import { parseArgs } from 'node:util'
import { Outbox } from '../../../src/outbox/outbox.js'
import { OutboxRelay } from '../../../src/outbox/relay.js'
import type { Producer } from '../../../src/producer/types.js'
import type { SqlDatabase } from '../../../src/sql/core/executor.js'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    file: { type: 'string' },
    table: { type: 'string' },
    published: { type: 'string' },
    'crash-after': { type: 'string' },
    lease: { type: 'string', default: '1s' },
  },
})
if (values.table === undefined || values.published === undefined) {
  throw new Error('usage: relay-process.worker.ts (--url URL | --file FILE) --table T --published P [--crash-after N]')
}

async function connect(): Promise<{ db: SqlDatabase<unknown>; close(): Promise<void> }> {
  if (values.file !== undefined) {
    const { default: Database } = await import('better-sqlite3')
    const { fromBetterSqlite3 } = await import('../../../src/sql/better-sqlite3/better-sqlite3-database.js')
    const connection = new Database(values.file)
    connection.pragma('busy_timeout = 10000')
    return { db: fromBetterSqlite3(connection), close: async () => void connection.close() }
  }
  const url = values.url as string
  if (url.startsWith('postgres')) {
    const { default: pg } = await import('pg')
    const { fromPg } = await import('../../../src/sql/pg/pg-database.js')
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    pool.on('error', () => {})
    return { db: fromPg(pool), close: () => pool.end() }
  }
  const { default: mysql } = await import('mysql2/promise')
  const { fromMysql2 } = await import('../../../src/sql/mysql2/mysql2-database.js')
  const pool = mysql.createPool({ uri: url, connectionLimit: 2 })
  return { db: fromMysql2(pool), close: () => pool.end() }
}

const { db, close } = await connect()
const crashAfter = values['crash-after'] === undefined ? null : Number(values['crash-after'])
const insert = `INSERT INTO ${values.published} (id, payload) VALUES (${db.dialect === 'postgres' ? '$1, $2' : '?, ?'})`
let confirmed = 0
const producer: Producer = {
  async publish(message) {
    await db.transaction((_tx, sql) => sql.execute(insert, [message.id, JSON.stringify(message.payload)]))
    confirmed++
    if (confirmed === crashAfter) process.kill(process.pid, 'SIGKILL')
  },
}

const outbox = new Outbox({ table: values.table })
const relay = new OutboxRelay({
  outbox,
  db,
  producer,
  batchSize: 10,
  lease: values.lease,
  pollInterval: 50,
  retention: false,
  onError: (error, context) => console.error(context.stage, error),
})
relay.start()
for (;;) {
  const backlog = await relay.backlog()
  if (backlog.pending === 0) break
  await new Promise((resolve) => setTimeout(resolve, 100))
}
await relay.stop()
await close()
