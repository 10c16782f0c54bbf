// The incident end to end on a real Kafka: payment messages published on a topic of several
// partitions while the consumer group consumes them, ~5% published twice with the same id
// (the producer's retry after a lost acknowledgement); members SIGKILLed while handling and
// restarted, one member joining and one leaving in the middle (rebalances); Idem in transaction
// mode on PostgreSQL: the record and the effect commit together. Then the audit: was every subscription extended exactly
// once for each payment, and was any payment lost?

import { Admin, Consumer, Producer } from '@platformatic/kafka'
import { PostgresStore } from 'idem/postgres'
import pg from 'pg'
import { generateWorkload } from '../incident/payments.js'
import { createPrng } from '../incident/prng.js'
import { type Audit, auditBilling, createBilling, dropBilling, ledgerCounts } from './billing.js'
import type { ConsumerReport } from './consumer-process.js'
import { ConsumerFleet, type FleetFaults } from './fleet.js'
import { publishPayments } from './publisher.js'

export interface KafkaIncidentOptions {
  broker: string
  pgUrl: string
  seed: number
  messages: number
  customers: number
  partitions: number
  consumers: number
  concurrency: number
  /** Per payment: the acknowledgement is lost and the producer publishes the payment again. */
  lostAckRate: number
  crashAfterEffect: number
  crashBeforeCommit: number
  /** While the payments are published, the chaos loop SIGKILLs a busy member about this often (0: never). */
  chaosEveryMs: number
  /** The payments are published over this long, while the group consumes. */
  publishOverMs: number
  /** A member joins at a third of the publishing and leaves at two thirds (two rebalances). */
  rebalance: boolean
  /** Give up waiting for the payments after this long. */
  timeoutMs: number
  /** Run the incident's consumer (no Idem) instead, to see the damage Idem prevents. */
  naive: boolean
}

export const DEFAULT_KAFKA_OPTIONS: KafkaIncidentOptions = {
  broker: process.env.IDEM_KAFKA_BROKER ?? '127.0.0.1:9092',
  pgUrl: process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  seed: 42,
  messages: 10_000,
  customers: 1000,
  partitions: 8,
  consumers: 3,
  concurrency: 16,
  lostAckRate: 0.05,
  crashAfterEffect: 0.0002,
  crashBeforeCommit: 0.0002,
  chaosEveryMs: 2500,
  publishOverMs: 8000,
  rebalance: true,
  timeoutMs: 120_000,
  naive: false,
}

export interface KafkaIncidentResult {
  options: KafkaIncidentOptions
  faults: FleetFaults & { lostAcks: number; publishRetries: number }
  /** What the member processes reported (lost with a process killed before its last report: a lower bound). */
  consumers: ConsumerReport
  audit: Audit
  /** Records in the topic at the end, and records the broker acknowledged to the producer (payments plus repeats). */
  records: number
  acknowledged: number
  /** Payments whose effect was applied more than once / never. */
  doubled: number
  lost: number
  deadLettered: number
  /** Records past the group's committed offsets once the members stopped. */
  uncommitted: number
  errors: string[]
  timings: { publishMs: number; totalMs: number }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runKafkaIncident(overrides: Partial<KafkaIncidentOptions> = {}): Promise<KafkaIncidentResult> {
  const options = { ...DEFAULT_KAFKA_OPTIONS, ...overrides }
  const workload = generateWorkload(options.seed, options.messages, options.customers)
  const rng = createPrng(options.seed, 3)
  const run = `${process.pid}-${Date.now().toString(36)}`
  const topic = `idem-incident-payments-${run}`
  const deadLetters = `${topic}.dead-letter`
  const group = `idem-incident-billing-${run}`
  const schema = `idem_incident_kafka_${run.replace('-', '_')}`
  const brokers = [options.broker]

  const admin = new Admin({ clientId: 'idem-incident-admin', bootstrapBrokers: brokers })
  const pool = new pg.Pool({ connectionString: options.pgUrl, max: 2 })
  pool.on('error', () => {})
  const producerClient = new Producer({ clientId: 'checkout', bootstrapBrokers: brokers, idempotent: true })
  // Reads the group's committed offsets and the topics' end offsets; never joins the group.
  const offsets = new Consumer({ clientId: 'idem-incident-offsets', groupId: group, bootstrapBrokers: brokers })
  const endOf = async (t: string, partitions: number) => {
    const ends = (await offsets.listOffsets({ topics: [t] })).get(t) ?? []
    return Array.from({ length: partitions }, (_, p) => ends[p] ?? 0n)
  }
  /** Records of the topic past the group's committed offset, partition by partition. */
  const uncommitted = async () => {
    const ends = await endOf(topic, options.partitions)
    const all = Array.from({ length: options.partitions }, (_, p) => p)
    const committed = (await offsets.listCommittedOffsets({ topics: [{ topic, partitions: all }] })).get(topic) ?? []
    return ends.reduce(
      (sum, end, p) => sum + Number(end - ((committed[p] ?? -1n) < 0n ? 0n : (committed[p] as bigint))),
      0,
    )
  }

  await admin.createTopics({ topics: [topic], partitions: options.partitions, replicas: 1 })
  await admin.createTopics({ topics: [deadLetters], partitions: 1, replicas: 1 })
  await createBilling(pool, schema, workload.customers)
  // Idem's records next to the business tables, in the same schema: created once, before the members start.
  await new PostgresStore({ client: pool, schema }).ensureSchema()
  const fleet = new ConsumerFleet({
    ...options,
    size: options.consumers,
    topic,
    group,
    schema,
  })
  try {
    const started = performance.now()
    await fleet.start()
    // The rebalances on purpose: a fourth member joins at a third of the publishing, leaves at two thirds.
    let joined: Promise<number> | undefined
    let left: Promise<void> | undefined
    const onProgress = (published: number) => {
      if (!options.rebalance) return
      if (joined === undefined && published >= workload.messages.length / 3) joined = fleet.join()
      if (joined !== undefined && left === undefined && published >= (workload.messages.length * 2) / 3) {
        left = joined.then((member) => fleet.leave(member))
      }
    }
    const publishing = publishPayments(producerClient, topic, workload.messages, rng, {
      lostAckRate: options.lostAckRate,
      durationMs: options.publishOverMs,
      onProgress,
    })
    const chaos =
      options.chaosEveryMs > 0
        ? setInterval(() => fleet.killOneBusy((n) => rng.int(0, n - 1)), options.chaosEveryMs)
        : undefined
    const deadline = Date.now() + options.timeoutMs
    // Chaos while the payments flow; then the group is left to recover and catch up.
    const published = await publishing.finally(() => clearInterval(chaos))
    await (left ?? joined)
    while ((await ledgerCounts(pool, schema)).applied < workload.messages.length && Date.now() < deadline) {
      await sleep(100)
    }
    // Let the duplicates drain: every record's offset committed, nothing in flight, three times running.
    for (let quiet = 0; quiet < 3 && Date.now() < deadline; ) {
      quiet = (await uncommitted()) === 0 && fleet.inFlight() === 0 ? quiet + 1 : 0
      await sleep(250)
    }
    await fleet.stop()
    const totalMs = performance.now() - started

    const ledger = await ledgerCounts(pool, schema)
    const records = (await endOf(topic, options.partitions)).reduce((a, b) => a + Number(b), 0)
    return {
      options,
      faults: { ...fleet.faults, lostAcks: published.lostAcks, publishRetries: published.retries },
      consumers: fleet.totals(),
      audit: await auditBilling(pool, schema, workload.messages),
      records,
      acknowledged: published.records,
      doubled: ledger.doubled,
      lost: workload.messages.length - ledger.applied,
      deadLettered: Number((await endOf(deadLetters, 1))[0]),
      uncommitted: await uncommitted(),
      errors: fleet.errors,
      timings: { publishMs: published.publishMs, totalMs },
    }
  } finally {
    await fleet.stop()
    await producerClient.close()
    await offsets.close()
    await admin.deleteTopics({ topics: [topic, deadLetters] }).catch(() => {})
    await admin.deleteGroups({ groups: [group] }).catch(() => {})
    await admin.close()
    await dropBilling(pool, schema)
    await pool.end()
  }
}

/** True when the run kept the guarantee: nothing doubled, nothing lost, no consumer died of a bug. */
export function kept(result: KafkaIncidentResult): boolean {
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

/**
 * True when the run itself went as planned, whatever the consumers did to the payments: every
 * acknowledged record in the topic, every payment applied, no consumer died of a bug. What --naive
 * is judged on: its doubled payments are the point of it.
 */
export function ranAsPlanned(result: KafkaIncidentResult): boolean {
  return result.records >= result.acknowledged && result.faults.unexpectedExits === 0 && result.lost === 0
}
