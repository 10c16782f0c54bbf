// A consumer process for pulsar-crash.test.ts: consumes the test's subscription with Idem on a
// SQLite file, adding 1 to `effects(key)` for each message. With --crash it reports the first
// handler it enters on stdout and waits there to be killed (in transaction mode after its effect
// write, which only the commit would make durable; in run mode before it). Otherwise it exits once
// --expect messages have settled, reporting each delivery and each settled one.

import { writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { consumePulsar } from '../../../../src/brokers/pulsar/pulsar-consumer.js'
import { IdempotentConsumer } from '../../../../src/consumer/consumer.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { fromBetterSqlite3 } from '../../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import { SqliteStore } from '../../../../src/stores/sqlite/sqlite-store.js'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    topic: { type: 'string' },
    subscription: { type: 'string' },
    db: { type: 'string' },
    mode: { type: 'string', default: 'transaction' },
    expect: { type: 'string', default: '1' },
    crash: { type: 'boolean', default: false },
  },
})
const { url, topic, subscription, db } = values
if (url === undefined || topic === undefined || subscription === undefined || db === undefined) {
  throw new Error(
    'usage: pulsar-crash.worker.ts --url U --topic T --subscription S --db FILE [--mode run|transaction] [--expect N] [--crash]',
  )
}

// Synchronous, so that the line is out before the test's SIGKILL can arrive.
const report = (line: object) => writeSync(1, `${JSON.stringify(line)}\n`)
const ADD_EFFECT = 'INSERT INTO effects (key, n) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1'

const database = new Database(db)
database.pragma('busy_timeout = 10000')
const store = new SqliteStore({ client: database })
const idem = new Idempotency({ store, lease: '2s' })
const stop = async (key: string) => {
  report({ inHandler: key })
  await new Promise<never>(() => {})
}

const run = new IdempotentConsumer<unknown>({
  idem,
  concurrency: 1,
  handler: async (_payload, ctx) => {
    if (values.crash) await stop(ctx.key)
    database.prepare(ADD_EFFECT).run(ctx.key)
  },
})
const transaction = new IdempotentConsumer<unknown, Database.Database>({
  idem,
  concurrency: 1,
  db: fromBetterSqlite3(database),
  transactionHandler: async (tx, _payload, ctx) => {
    tx.prepare(ADD_EFFECT).run(ctx.key)
    if (values.crash) await stop(ctx.key)
  },
})

const expected = Number(values.expect)
/** Consume with `consumer` until `expected` messages settled as done. */
const consumeUntilDone = async <Tx>(consumer: IdempotentConsumer<unknown, Tx>): Promise<void> => {
  let settled = 0
  const finished = new Promise<void>((resolve) => {
    consumer.on('settled', (result) => {
      report({ settled: result.key, outcome: result.outcome })
      if (result.outcome === 'executed' || result.outcome === 'replayed') settled++
      if (settled >= expected) resolve()
    })
  })
  consumer.on('received', (r) => report({ received: r.key, deliveryCount: r.deliveryCount }))
  const subscribed = await consumePulsar({ url, topic, subscription, deadLetterTopic: false, consumer })
  await finished
  await subscribed.close()
}

await (values.mode === 'run' ? consumeUntilDone(run) : consumeUntilDone(transaction))
await store.close()
database.close()
