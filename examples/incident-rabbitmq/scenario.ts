// The incident end to end on a real RabbitMQ: payment messages published with lost confirms
// (re-published with the same messageId), consumed by several processes that are SIGKILLed while
// handling and restarted, every effect committed in SQLite with the Idem record. Then the audit:
// was every subscription extended exactly once for each payment, and was any payment lost?

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import amqp from 'amqplib'
import { DEFAULT_DELAY_TIERS } from 'idem/amqp'
import { SqliteStore } from 'idem/sqlite'
import { generateWorkload } from '../incident/payments.js'
import { createPrng } from '../incident/prng.js'
import { type Audit, auditSubscriptions, openSubscriptions } from '../incident/subscriptions.js'
import type { ConsumerReport } from './consumer-process.js'
import { ConsumerFleet, type FleetFaults } from './fleet.js'
import { publishPayments } from './publisher.js'

export interface RabbitIncidentOptions {
  url: string
  seed: number
  messages: number
  customers: number
  consumers: number
  prefetch: number
  concurrency: number
  /** Per publish: the confirm is lost and the producer publishes the message again. */
  lostConfirmRate: number
  crashInTransaction: number
  crashBeforeAck: number
  /** The chaos loop SIGKILLs a busy consumer about this often (0: never). */
  chaosEveryMs: number
  /** Give up waiting for the payments after this long. */
  timeoutMs: number
  /** Run the incident's consumer (no Idem) instead, to see the damage Idem prevents. */
  naive: boolean
}

export const DEFAULT_RABBIT_OPTIONS: RabbitIncidentOptions = {
  url: process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  seed: 42,
  messages: 10_000,
  customers: 1000,
  consumers: 4,
  prefetch: 64,
  concurrency: 16,
  lostConfirmRate: 0.05,
  crashInTransaction: 0.0005,
  crashBeforeAck: 0.0005,
  chaosEveryMs: 2000,
  timeoutMs: 120_000,
  naive: false,
}

export interface RabbitIncidentResult {
  options: RabbitIncidentOptions
  faults: FleetFaults & { lostConfirms: number }
  /** What the consumer processes reported (lost with a process killed before its last report: a lower bound). */
  consumers: ConsumerReport
  audit: Audit
  /** Payments whose effect was applied more than once / never. */
  doubled: number
  lost: number
  deadLettered: number
  /** Copies still in the queue after the consumers stopped (duplicates of applied payments). */
  leftInQueue: number
  errors: string[]
  timings: { publishMs: number; totalMs: number }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runRabbitIncident(overrides: Partial<RabbitIncidentOptions> = {}): Promise<RabbitIncidentResult> {
  const options = { ...DEFAULT_RABBIT_OPTIONS, ...overrides }
  const workload = generateWorkload(options.seed, options.messages, options.customers)
  const rng = createPrng(options.seed, 3)
  const dir = mkdtempSync(join(tmpdir(), 'idem-incident-rabbitmq-'))
  const file = join(dir, 'billing.db')
  const db = openSubscriptions(file, workload.customers)
  new SqliteStore({ client: db }).ensureSchema()
  const queue = `idem-incident-${process.pid}-${Date.now().toString(36)}`
  const connection = await amqp.connect(options.url)
  connection.on('error', () => {})
  const admin = await connection.createChannel()
  await admin.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  const fleet = new ConsumerFleet({ ...options, size: options.consumers, db: file, queue })
  const applied = db.prepare('SELECT count(DISTINCT message_id) AS n FROM payments_applied')
  /** Messages ready in `q`; 0 if it does not exist (the naive consumers declare no delay queues). */
  const depth = async (q: string) => {
    const channel = await connection.createChannel()
    channel.on('error', () => {})
    try {
      return (await channel.checkQueue(q)).messageCount
    } catch {
      return 0
    } finally {
      await channel.close().catch(() => {})
    }
  }
  const idemQueues = [...DEFAULT_DELAY_TIERS.map((ms) => `${queue}.idem.delay.${ms}`), `${queue}.idem.dlq`]
  try {
    // The backlog first (as after an outage), so that the consumers are busy when they are killed.
    const started = performance.now()
    const published = await publishPayments(connection, queue, workload.messages, rng, options.lostConfirmRate)
    await fleet.start()
    const chaos =
      options.chaosEveryMs > 0
        ? setInterval(() => fleet.killOneBusy((n) => rng.int(0, n - 1)), options.chaosEveryMs)
        : undefined
    const deadline = Date.now() + options.timeoutMs
    while ((applied.get() as { n: number }).n < workload.messages.length && Date.now() < deadline) await sleep(100)
    clearInterval(chaos)
    // Let the duplicates (publisher retries, redeliveries) drain: all queues empty, nothing in flight.
    for (let quiet = 0; quiet < 3 && Date.now() < deadline; ) {
      const pending = (await Promise.all([queue, ...idemQueues].map(depth))).reduce((a, b) => a + b, 0)
      quiet = pending === 0 && fleet.inFlight() === 0 ? quiet + 1 : 0
      await sleep(250)
    }
    await fleet.stop()
    const totalMs = performance.now() - started

    const doubled = db
      .prepare(
        'SELECT count(*) AS n FROM (SELECT message_id FROM payments_applied GROUP BY message_id HAVING count(*) > 1)',
      )
      .get() as { n: number }
    return {
      options,
      faults: { ...fleet.faults, lostConfirms: published.lostConfirms },
      consumers: fleet.totals(),
      audit: auditSubscriptions(db, workload.messages),
      doubled: doubled.n,
      lost: workload.messages.length - (applied.get() as { n: number }).n,
      deadLettered: await depth(`${queue}.idem.dlq`),
      leftInQueue: await depth(queue),
      errors: fleet.errors,
      timings: { publishMs: published.publishMs, totalMs },
    }
  } finally {
    await fleet.stop()
    for (const q of [queue, ...idemQueues]) await admin.deleteQueue(q)
    await admin.deleteExchange(`${queue}.idem.dlx`)
    await connection.close()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** True when the run kept the guarantee: nothing doubled, nothing lost, no consumer died of a bug. */
export function kept(result: RabbitIncidentResult): boolean {
  const { audit } = result
  return (
    result.doubled === 0 &&
    result.lost === 0 &&
    audit.wronglyExtended === 0 &&
    audit.extraYears === 0 &&
    audit.missingYears === 0 &&
    audit.paymentsApplied === result.options.messages &&
    result.deadLettered === 0 &&
    result.faults.unexpectedExits === 0
  )
}
