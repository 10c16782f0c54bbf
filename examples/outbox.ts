// The outbox end to end on SQLite. Run it: npx tsx examples/outbox.ts
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { Outbox, OutboxRelay, type OutgoingMessage, type Producer } from 'idem/outbox'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'

const database = new Database(':memory:')
const db = fromBetterSqlite3(database)
const store = new SqliteStore({ client: database })
store.ensureSchema()
const outbox = new Outbox() // table 'idem_outbox'; outbox.schema(dialect) gives the DDL for migrations
await outbox.ensureSchema(db)
database.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)')

// The order and its "placed" message commit together, once per command.
const commands = new Idempotency({ store, scope: 'place-order' })
const placeOrder = (commandId: string, orderId: string, total: number) =>
  commands.transaction(db, { key: commandId, payload: { orderId, total } }, async (_tx, ctx) => {
    await ctx.sql.execute('INSERT INTO orders (id, total) VALUES (?, ?)', [orderId, total])
    return outbox.add(ctx.sql, { payload: { orderId, total }, destination: 'orders.placed' })
  })
await placeOrder('command-1', 'order-42', 90)
await placeOrder('command-1', 'order-42', 90) // redelivered: replayed, no second order or message

// Any confirming Producer (AMQP, JetStream, Redis Streams, MQTT); here a broker that delivers twice.
const deliveries: OutgoingMessage[] = []
const producer: Producer = {
  async publish(message) {
    deliveries.push(message, message)
  },
}
const relay = new OutboxRelay({ outbox, db, producer, pollInterval: '100ms' })
relay.start()
while ((await relay.backlog()).pending > 0) await new Promise((resolve) => setTimeout(resolve, 20))
await relay.stop()

// The consumer keys on the message id: the duplicate delivery is a replay.
const shipping = new Idempotency({ store, scope: 'shipping' })
let shipments = 0
for (const message of deliveries) {
  await shipping.run({ key: message.id, payload: message.payload }, () => ++shipments)
}
console.log(`${deliveries.length} deliveries, ${shipments} shipment`)
if (shipments !== 1) throw new Error(`expected one shipment, got ${shipments}`)
