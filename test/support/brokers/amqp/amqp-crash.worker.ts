// A consumer process for the SIGKILL tests: consumes one queue through consumeAmqp, records each
// effect (and each settled outcome) in a SQLite file the test reads. --stall makes the handler
// hang mid-work (inside its uncommitted transaction in tx mode, before the effect in run mode)
// so the parent can SIGKILL it there; --die-before-ack kills the process where the ack would go,
// after the work is stored. SIGTERM closes the consumer gracefully.

import { parseArgs } from 'node:util'
import amqp from 'amqplib'
import Database from 'better-sqlite3'
import { consumeAmqp } from '../../../../src/brokers/amqp/amqp-consumer.js'
import type { AmqpChannel, AmqpConnection } from '../../../../src/brokers/amqp/amqp-driver.js'
import type { RunConsumerOptions, TransactionConsumerOptions } from '../../../../src/consumer/types.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { fromBetterSqlite3 } from '../../../../src/sql/better-sqlite3/better-sqlite3-database.js'
import { SqliteStore } from '../../../../src/stores/sqlite/sqlite-store.js'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    db: { type: 'string' },
    queue: { type: 'string' },
    mode: { type: 'string', default: 'tx' },
    stall: { type: 'boolean', default: false },
    'die-before-ack': { type: 'boolean', default: false },
  },
})
if (values.url === undefined || values.db === undefined || values.queue === undefined) {
  throw new Error(
    'usage: amqp-crash.worker.ts --url URL --db FILE --queue NAME [--mode tx|run] [--stall] [--die-before-ack]',
  )
}

const db = new Database(values.db)
db.pragma('busy_timeout = 10000')
const store = new SqliteStore({ client: db })
const idem = new Idempotency({ store, scope: 'amqp-crash', lease: '1s' })
const recordEffect = db.prepare('INSERT INTO effects (message_id, delivery_count, recovered) VALUES (?, ?, ?)')
const recordOutcome = db.prepare('INSERT INTO outcomes (message_id, outcome) VALUES (?, ?)')
const forever = () => new Promise<never>(() => {})
const stall = async () => {
  console.log('HANDLING')
  return forever()
}

const model = await amqp.connect(values.url)
let connection: AmqpConnection = model
if (values['die-before-ack']) {
  // The work is stored; the process dies exactly where the ack would have been sent.
  connection = {
    createConfirmChannel: () => model.createConfirmChannel(),
    createChannel: async () =>
      new Proxy(await model.createChannel(), {
        get(target, prop) {
          if (prop === 'ack') return () => process.kill(process.pid, 'SIGKILL')
          const value = Reflect.get(target, prop, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      }) as AmqpChannel,
  }
}

const subscription = await consumeAmqp({
  client: connection,
  queue: values.queue,
  retry: { delayTiers: [200] },
  ...(values.mode === 'tx'
    ? ({
        idem,
        db: fromBetterSqlite3(db),
        transactionHandler: async (tx, _payload, ctx) => {
          tx.prepare('INSERT INTO effects (message_id, delivery_count, recovered) VALUES (?, ?, ?)').run(
            ctx.key,
            ctx.delivery.deliveryCount,
            0,
          )
          if (values.stall) await stall() // killed here: the transaction never commits
        },
      } satisfies TransactionConsumerOptions<unknown, Database.Database>)
    : ({
        idem,
        handler: async (_payload, ctx) => {
          if (values.stall) await stall() // killed here: the claim stays in progress until its lease lapses
          recordEffect.run(ctx.key, ctx.delivery.deliveryCount, ctx.recovered ? 1 : 0)
        },
      } satisfies RunConsumerOptions<unknown>)),
  // Attached before the first delivery: the queue may hold messages when the worker starts.
  on: { settled: (r) => recordOutcome.run(r.key, r.outcome) },
})
process.once('SIGTERM', async () => {
  await subscription.close()
  await model.close()
  db.close()
  process.exit(0)
})
console.log('READY')
