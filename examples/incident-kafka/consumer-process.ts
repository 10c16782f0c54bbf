// One payment consumer process: a member of the billing consumer group, consuming the payments
// topic through idem/kafka in transaction mode: Idem's record and the effect, extend the
// subscription, commit together in one PostgreSQL transaction (--naive: the incident's consumer,
// the same effect and the same offset commits, no Idem). It may kill itself with SIGKILL
// (--crash-after-effect R: inside the transaction, after the effect's writes, before the commit;
// --crash-before-commit R: instead of an offset commit) and reports its counters to the parent
// over IPC. SIGTERM: graceful close (the member leaves the group).
//
// Why transaction mode: the effect lives in PostgreSQL, so the record can commit with it. A process
// killed before the commit rolls both back, and the next owner runs the payment once; one killed
// after it leaves a record that replays. Run mode (records in Redis) would leave a window between
// the effect and its record, which a takeover cannot close without looking the effect up.

import { parseArgs } from 'node:util'
import { Consumer, Producer } from '@platformatic/kafka'
import { Idempotency } from 'idem'
import { consumeKafka } from 'idem/kafka'
import { fromPg, PostgresStore } from 'idem/postgres'
import pg from 'pg'
import type { PaymentMessage } from '../incident/payments.js'
import { paymentEffect } from './billing.js'

// Until the consumer is up, a SIGTERM has nothing to hand back: leave at once.
let shutdown: () => unknown = () => process.exit(0)
process.once('SIGTERM', () => shutdown())

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    pg: { type: 'string' },
    schema: { type: 'string' },
    name: { type: 'string', default: 'billing' },
    concurrency: { type: 'string', default: '16' },
    'crash-after-effect': { type: 'string', default: '0' },
    'crash-before-commit': { type: 'string', default: '0' },
    naive: { type: 'boolean', default: false },
  },
})
const { broker, topic, group, schema } = values
if (
  broker === undefined ||
  topic === undefined ||
  group === undefined ||
  values.pg === undefined ||
  schema === undefined
) {
  throw new Error(
    'usage: consumer-process.ts --broker HOST:PORT --topic T --group G --pg URL --schema S [--crash-… RATE] [--naive]',
  )
}
const crashAfterEffect = Number(values['crash-after-effect'])
const crashBeforeCommit = Number(values['crash-before-commit'])

export interface ConsumerReport {
  /** Payments whose effect this process ran. */
  executed: number
  /** Duplicates (publisher retries, records read again) acknowledged from their stored outcome. */
  replayed: number
  retried: number
  deadLettered: number
  /** Errors the adapter (or, --naive, the plain loop) recovered from: commits refused during a rebalance, fetches. */
  recoveredErrors: number
  /** The highest consumer group generation this member saw (one per rebalance). */
  generation: number
  inFlight: number
}
const report: ConsumerReport = {
  executed: 0,
  replayed: 0,
  retried: 0,
  deadLettered: 0,
  recoveredErrors: 0,
  generation: 0,
  inFlight: 0,
}
/** Tell the parent why this process is about to die, then die where it stands. */
const die = (point: 'after-effect' | 'before-commit'): never => {
  process.send?.({ crash: point, report })
  process.kill(process.pid, 'SIGKILL')
  throw new Error('unreachable')
}

// A connection per transaction in flight (concurrency), and one for the naive loop's spare.
const pool = new pg.Pool({ connectionString: values.pg, max: Number(values.concurrency) + 1 })
pool.on('error', () => {})
const applyPayment = paymentEffect(schema)

// Short sessions, so that the group notices a SIGKILLed member within seconds (the broker of
// test/services/kafka.sh allows sessions down to 1 s).
const client = new Consumer({
  clientId: values.name,
  groupId: group,
  bootstrapBrokers: [broker],
  sessionTimeout: 3000,
  heartbeatInterval: 500,
  rebalanceTimeout: 6000,
  maxWaitTime: 200,
})
client.on('consumer:group:join', () => {
  report.generation = Math.max(report.generation, client.generationId)
})
// The crash after the work and before the offset commit: now and then a commit request is replaced
// by a SIGKILL, with the chance `rate` per record it would have moved the group past (the same
// fault rate per record however many records a commit covers).
const commit = client.commit.bind(client) as (...args: unknown[]) => unknown
const committedTo = new Map<string, bigint>()
client.commit = ((...args: unknown[]) => {
  let records = 0
  for (const o of (args[0] as { offsets: { topic: string; partition: number; offset: bigint }[] }).offsets) {
    const id = `${o.topic}:${o.partition}`
    const last = committedTo.get(id)
    records += last === undefined ? 1 : Math.max(0, Number(o.offset - last))
    if (last === undefined || o.offset > last) committedTo.set(id, o.offset)
  }
  return Math.random() < 1 - (1 - crashBeforeCommit) ** records ? die('before-commit') : commit(...args)
}) as typeof client.commit

interface Running {
  inFlight(): number
  close(): Promise<void>
}

/** The consumer behind Idem: the record and the effect in one PostgreSQL transaction, then the offset counts as done. */
async function consumeWithIdem(): Promise<Running> {
  // Its tables were created once by the scenario, in the run's schema, next to the business tables.
  const store = new PostgresStore({ client: pool, schema })
  const idem = new Idempotency({ store, scope: 'billing:extend-subscription', ttl: '24h' })
  // Dead letters (none expected) go through a producer of their own.
  const producer = new Producer({ clientId: `${values.name}-dead-letters`, bootstrapBrokers: [broker as string] })
  const handle = await consumeKafka<PaymentMessage, pg.PoolClient>({
    client,
    producer,
    topics: [topic as string],
    // A customer's payments in order (the record key is the customer), customers in parallel.
    ordering: 'key',
    idem,
    concurrency: Number(values.concurrency),
    backoff: () => 200,
    onError: () => report.recoveredErrors++,
    db: fromPg<pg.PoolClient>(pool),
    transactionHandler: async (tx, payment) => {
      const extended = await applyPayment(tx, payment)
      // Killed with the effect written and not committed: PostgreSQL rolls back the effect and the record together.
      if (Math.random() < crashAfterEffect) die('after-effect')
      return extended
    },
    // Attached before the first delivery: a member that joins finds records waiting.
    on: {
      settled: (r) => {
        if (r.outcome === 'executed') report.executed++
        else if (r.outcome === 'replayed') report.replayed++
        else if (r.outcome === 'retried') report.retried++
        else report.deadLettered++
      },
    },
  })
  return {
    inFlight: () => handle.consumer.inFlight,
    async close() {
      await handle.close()
      await client.close()
      await producer.close()
    },
  }
}

/**
 * The incident's consumer, for comparison: the same effect, then the offsets of the records it
 * handled committed every 100 ms (as often as consumeKafka commits), for the partitions it owns,
 * records of a partition it no longer owns skipped, and records it already handled skipped when
 * the stream reads them again: at-least-once, as a careful consumer without Idem is.
 */
async function consumeNaively(): Promise<Running> {
  const stream = await client.consume({
    topics: [topic as string],
    mode: 'committed',
    fallbackMode: 'earliest',
    autocommit: false,
  })
  let stopping = false
  let busy = 0
  const handled = new Map<string, { topic: string; partition: number; offset: bigint; leaderEpoch: number }>()
  /** Per partition, the offset after the last record this process handled. */
  const next = new Map<string, bigint>()
  const owns = (o: { topic: string; partition: number }) =>
    (client.assignments ?? []).some((a) => a.topic === o.topic && a.partitions.includes(o.partition))
  const commitHandled = async () => {
    const offsets = [...handled.values()].filter(owns)
    handled.clear()
    if (offsets.length === 0) return
    try {
      await client.commit({ offsets })
    } catch {
      // Refused during a rebalance: the records are read again by whoever owns the partition next.
      report.recoveredErrors++
    }
  }
  let committing: Promise<void> = Promise.resolve()
  const commitTimer = setInterval(() => {
    committing = committing.then(commitHandled)
  }, 100)
  const loop = (async () => {
    for await (const message of stream) {
      // Fetched before a rebalance gave its partition to another member: that member reads it from the committed offset.
      if (!owns(message)) continue
      // Read again by this process (the stream reads from the committed offset after each rebalance): already handled here.
      const id = `${message.topic}:${message.partition}`
      if (message.offset >= (next.get(id) ?? 0n)) {
        next.set(id, message.offset + 1n)
        busy = 1
        await applyPayment(pool, JSON.parse(message.value.toString('utf8')) as PaymentMessage)
        report.executed++
        if (Math.random() < crashAfterEffect) die('after-effect')
        busy = 0
      }
      handled.set(id, {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset + 1n,
        leaderEpoch: -1,
      })
    }
  })()
  // A loop that ends while the process is not stopping is a bug of this example: die loudly.
  loop.then(
    () => stopping || fail(new Error('the message stream ended')),
    (error) => stopping || fail(error),
  )
  return {
    inFlight: () => busy,
    async close() {
      stopping = true
      await stream.close()
      await loop.catch(() => {})
      clearInterval(commitTimer)
      await committing
      await commitHandled()
      await client.close()
    },
  }
}

function fail(error: unknown): void {
  console.error(error)
  process.exit(1)
}

const running = values.naive ? await consumeNaively() : await consumeWithIdem()
report.generation = Math.max(report.generation, client.generationId)
const timer = setInterval(() => process.send?.({ report: { ...report, inFlight: running.inFlight() } }), 200)

shutdown = async () => {
  clearInterval(timer)
  await running.close()
  await pool.end()
  process.send?.({ report: { ...report, inFlight: 0 } }, () => process.exit(0))
}
process.send?.({ ready: true })
