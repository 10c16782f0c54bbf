// One payment consumer process: consumes the payments queue through idem/amqp in transaction
// mode, so the Idem record, the subscription extension and the ledger line commit together in the
// shared SQLite file (--naive: the incident's consumer, same effect, no Idem). It may kill itself
// with SIGKILL mid-delivery (--crash-in-transaction R, --crash-before-ack R) and reports its
// counters to the parent over IPC. SIGTERM: graceful close.

import { parseArgs } from 'node:util'
import amqp from 'amqplib'
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { type AmqpChannel, type AmqpConnection, consumeAmqp } from 'idem/amqp'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'
import type { PaymentMessage } from '../incident/payments.js'
import { paymentEffect } from '../incident/subscriptions.js'

// Until the consumer is up, a SIGTERM has nothing to hand back: leave at once.
let shutdown: () => unknown = () => process.exit(0)
process.once('SIGTERM', () => shutdown())

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    db: { type: 'string' },
    queue: { type: 'string' },
    prefetch: { type: 'string', default: '32' },
    concurrency: { type: 'string', default: '8' },
    'crash-in-transaction': { type: 'string', default: '0' },
    'crash-before-ack': { type: 'string', default: '0' },
    naive: { type: 'boolean', default: false },
  },
})
if (values.url === undefined || values.db === undefined || values.queue === undefined) {
  throw new Error('usage: consumer-process.ts --url URL --db FILE --queue NAME [--prefetch N] [--crash-… RATE]')
}
const queue = values.queue
const prefetch = Number(values.prefetch)
const crashInTransaction = Number(values['crash-in-transaction'])
const crashBeforeAck = Number(values['crash-before-ack'])

export interface ConsumerReport {
  executed: number
  replayed: number
  retried: number
  deadLettered: number
  brokerErrors: number
  redeliveries: number
  inFlight: number
}
const report: ConsumerReport = {
  executed: 0,
  replayed: 0,
  retried: 0,
  deadLettered: 0,
  brokerErrors: 0,
  redeliveries: 0,
  inFlight: 0,
}
/** Tell the parent why this process is about to die, then die where it stands. */
const die = (point: 'in-transaction' | 'before-ack'): never => {
  process.send?.({ crash: point, report })
  process.kill(process.pid, 'SIGKILL')
  throw new Error('unreachable')
}

const db = new Database(values.db)
db.pragma('busy_timeout = 10000')
db.pragma('synchronous = NORMAL')
const store = new SqliteStore({ client: db })
const idem = new Idempotency({ store, scope: 'billing:extend-subscription', ttl: '24h' })
const applyPayment = paymentEffect(db)

const model = await amqp.connect(values.url)
model.on('error', () => {})
// The crash after the commit and before the ack: the ack is replaced by a SIGKILL, now and then.
const connection: AmqpConnection = {
  createConfirmChannel: () => model.createConfirmChannel(),
  createChannel: async () => {
    const channel = await model.createChannel()
    const ack = channel.ack.bind(channel)
    channel.ack = (message, allUpTo) => (Math.random() < crashBeforeAck ? die('before-ack') : ack(message, allUpTo))
    return channel as AmqpChannel
  },
}

/** The consumer behind Idem: the record, the extension and the ledger line commit together. */
async function consumeWithIdem(): Promise<{ inFlight(): number; close(): Promise<void> }> {
  const subscription = await consumeAmqp<PaymentMessage, typeof db>({
    client: connection,
    queue,
    prefetch,
    onError: () => {},
    idem,
    db: fromBetterSqlite3(db),
    concurrency: Number(values.concurrency),
    backoff: () => 200,
    transactionHandler: (_tx, message) => {
      const extended = applyPayment(message)
      // Killed with the writes made and not committed: SQLite rolls them back with the process.
      if (Math.random() < crashInTransaction) die('in-transaction')
      return extended
    },
    // Attached before the first delivery: a restarted process finds the queue full.
    on: {
      received: (r) => {
        if (r.deliveryCount > 1) report.redeliveries++
      },
      settled: (r) => {
        if (r.outcome === 'executed') report.executed++
        else if (r.outcome === 'replayed') report.replayed++
        else if (r.outcome === 'retried') report.retried++
        else report.deadLettered++
      },
      broker_error: () => report.brokerErrors++,
    },
  })
  const { consumer } = subscription
  return { inFlight: () => consumer.inFlight, close: () => subscription.close() }
}

/** The incident's consumer, for comparison: the same effect and acks, no idempotency control. */
async function consumeNaively(): Promise<{ inFlight(): number; close(): Promise<void> }> {
  const channel = await connection.createChannel()
  await channel.prefetch(prefetch, false)
  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      if (message === null) return
      if (message.fields.redelivered) report.redeliveries++
      if (Math.random() < crashInTransaction) die('in-transaction')
      applyPayment(JSON.parse(message.content.toString('utf8')) as PaymentMessage)
      report.executed++
      channel.ack(message, false)
    },
    { noAck: false },
  )
  return {
    inFlight: () => 0,
    async close() {
      await channel.cancel(consumerTag)
      await channel.close()
    },
  }
}

const running = values.naive ? await consumeNaively() : await consumeWithIdem()
const timer = setInterval(() => process.send?.({ report: { ...report, inFlight: running.inFlight() } }), 200)

shutdown = async () => {
  clearInterval(timer)
  await running.close()
  await model.close()
  await store.close()
  db.close()
  process.send?.({ report: { ...report, inFlight: 0 } }, () => process.exit(0))
}
process.send?.({ ready: true })
