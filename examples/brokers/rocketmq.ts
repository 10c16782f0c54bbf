// RocketMQ with Idem: a subscription renewal sent as a transactional message whose commit is the
// database's (the broker's check-back answers from the same transaction's record), and an
// idempotent consumer. The producer times out and sends the renewal again (same id); its guarded
// UPDATE changes nothing the second time, but the broker now holds two copies. The year of
// service is granted once.
// Run it: npx tsx examples/brokers/rocketmq.ts (needs RocketMQ's proxy on 127.0.0.1:8081 and the
// topics: bash test/services/rocketmq.sh topics Renewals:TRANSACTION RenewalsDead).

import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { consumeRocketMQ, transactionalProducer, transactionChecker } from 'idem/rocketmq'
import { fromBetterSqlite3 } from 'idem/sql'
import { SqliteStore } from 'idem/sqlite'
import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'

export interface Renewal {
  subscriptionId: string
  until: string
}

/** `tag` keeps this run's messages apart from earlier runs' on the same topics. */
export async function renewOnce(endpoints: string, tag: string) {
  const connection = new Database(':memory:')
  connection.exec('CREATE TABLE subscriptions (id TEXT PRIMARY KEY, paid_until TEXT NOT NULL)')
  connection.exec("INSERT INTO subscriptions VALUES ('sub-42', '2026-12-07')")
  const db = fromBetterSqlite3(connection)
  const store = new SqliteStore({ client: connection })
  store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'renewals' })
  const quiet = { info() {}, warn() {}, error: console.error }

  // Every process that sends to the topic carries the checker: the broker asks any of them about
  // a transaction whose producer died, and the answer comes from the database, not from memory.
  const client = new Producer({
    endpoints,
    namespace: '',
    topic: 'Renewals',
    checker: transactionChecker({ db }),
    logger: quiet,
  })
  await client.startup()
  const renewals = transactionalProducer({ client, db, topic: 'Renewals', tag })
  await renewals.ensureSchema()

  const granted: string[] = []
  let settled = 0
  let bothSettled!: () => void
  const done = new Promise<void>((resolve) => {
    bothSettled = resolve
  })
  const receiver = new SimpleConsumer({
    endpoints,
    namespace: '',
    consumerGroup: `billing-${tag}`,
    subscriptions: new Map([['Renewals', tag]]),
    awaitDuration: 3000,
    logger: quiet,
  })
  await receiver.startup()
  const consumer = await consumeRocketMQ<Renewal>({
    client: receiver,
    invisibleDuration: '30s',
    deadLetterTopic: 'RenewalsDead', // failures after maxAttempts land here with their reason
    deadLetterProducer: client,
    idem,
    handler: async (renewal) => {
      granted.push(renewal.subscriptionId) // your side effect: grant the year, email the receipt
    },
    on: {
      settled: () => {
        if (++settled === 2) bothSettled()
      },
    },
  })

  // The id is made once per renewal and reused by every retry: that is what makes a retry recognisable.
  const renewal = { id: 'renewal-sub-42-2027', payload: { subscriptionId: 'sub-42', until: '2027-12-07' } }
  for (let attempt = 1; attempt <= 2; attempt++) {
    await renewals.send(renewal, async (_tx, sql) => {
      // A guarded write: the second attempt finds it done and changes nothing.
      await sql.execute('UPDATE subscriptions SET paid_until = ? WHERE id = ? AND paid_until < ?', [
        renewal.payload.until,
        renewal.payload.subscriptionId,
        renewal.payload.until,
      ])
    })
  }

  await done
  await consumer.close()
  await receiver.shutdown()
  await client.shutdown()
  const paidUntil = connection.prepare("SELECT paid_until FROM subscriptions WHERE id = 'sub-42'").get()
  await store.close()
  connection.close()
  return { granted, paidUntil }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outcome = await renewOnce('127.0.0.1:8081', `example-${Date.now()}`)
  console.log(outcome)
  if (outcome.granted.length !== 1) process.exit(1)
}
