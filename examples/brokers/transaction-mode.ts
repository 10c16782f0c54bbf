// Transaction mode through a consumer: the Idem record and the handler's own SQL writes commit in
// one transaction, so a message's effect happens exactly once, even if the process dies between the
// writes and the ack. Here on Redis Streams and SQLite; every adapter takes the same options.
// Run it: npx tsx examples/brokers/transaction-mode.ts (needs Redis on 127.0.0.1:6379).

import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { newMessageId } from 'idem/producer'
import { consumeRedisStream, redisStreamProducer } from 'idem/redis-streams'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'
import { Redis } from 'ioredis'

export interface Payment {
  orderId: string
  amountCents: number
}

export async function recordPaymentsOnce(redis: Redis, stream: string): Promise<{ ledger: unknown[] }> {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE ledger (message_id TEXT PRIMARY KEY, order_id TEXT, amount_cents INTEGER)')
  // The store and the handler's writes share one database: that is what lets them commit together.
  const store = new SqliteStore({ client: db })
  await store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'ledger' })

  let settled = 0
  let bothSettled!: () => void
  const done = new Promise<void>((resolve) => {
    bothSettled = resolve
  })
  const consumer = await consumeRedisStream<Payment, Database.Database>({
    client: redis,
    stream,
    group: 'ledger',
    idem,
    db: fromBetterSqlite3(db), // transaction mode: the database the record is written to
    // (tx, payload, ctx): tx is the open transaction (here the better-sqlite3 Database itself);
    // write through it. The record, these rows and the outcome commit together or not at all.
    transactionHandler: (tx, payment, ctx) => {
      tx.prepare('INSERT INTO ledger (message_id, order_id, amount_cents) VALUES (?, ?, ?)').run(
        ctx.key,
        payment.orderId,
        payment.amountCents,
      )
      return { recorded: payment.orderId } // stored with the record, replayed to duplicates
    },
    on: {
      settled: () => {
        if (++settled === 2) bothSettled()
      },
    },
  })

  const producer = redisStreamProducer({ client: redis, stream })
  const message = { id: newMessageId(), payload: { orderId: 'order-1', amountCents: 4200 } }
  await producer.publish(message)
  await producer.publish(message) // the retry: a second entry, the same id, no second ledger row

  await done
  await consumer.close()
  const ledger = db.prepare('SELECT message_id, order_id, amount_cents FROM ledger').all()
  await store.close()
  db.close()
  return { ledger }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const redis = new Redis('redis://127.0.0.1:6379')
  const stream = `idem-example-ledger-${process.pid}`
  try {
    console.log(await recordPaymentsOnce(redis, stream))
  } finally {
    await redis.del(stream, `${stream}:dead`)
    redis.disconnect()
  }
}
