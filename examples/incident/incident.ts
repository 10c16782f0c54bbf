// The incident, end to end: one workload, two identical fault sequences, two consumers, one audit each.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Idempotency } from '../../src/index.js'
import { SqliteStore } from '../../src/stores/sqlite/index.js'
import { type BrokerStats, type FaultRates, SimulatedBroker } from './broker.js'
import { type Consumer, type IdemConsumerStats, idemConsumer, naiveConsumer } from './consumers.js'
import { generateWorkload, type PaymentMessage, type Workload } from './payments.js'
import { type Audit, auditSubscriptions, type Db, openSubscriptions } from './subscriptions.js'

export interface IncidentOptions {
  seed: number
  messages: number
  customers: number
  faults: FaultRates
}

export const DEFAULT_FAULTS: FaultRates = { crashAfterWork: 0.07, publisherRetry: 0.05, crashBeforeWork: 0.03 }

export const DEFAULT_OPTIONS: IncidentOptions = { seed: 42, messages: 200, customers: 50, faults: DEFAULT_FAULTS }

export interface ConsumerOutcome extends Audit {
  /** Distinct messages (messageIds) published. */
  published: number
  deliveries: number
  /** Deliveries beyond the first of each messageId. */
  duplicateDeliveries: number
}

export interface IncidentResult {
  options: IncidentOptions
  /** Faults as they actually happened (identical for both consumers, which is checked). */
  faults: Pick<BrokerStats, 'crashesAfterWork' | 'publisherRetries' | 'crashesBeforeWork'>
  naive: ConsumerOutcome
  idem: ConsumerOutcome
  /** What `idem.run` reported over all deliveries that reached it. */
  idemRuns: IdemConsumerStats
}

export async function runIncident(overrides: Partial<IncidentOptions> = {}): Promise<IncidentResult> {
  const options: IncidentOptions = {
    ...DEFAULT_OPTIONS,
    ...overrides,
    faults: { ...DEFAULT_FAULTS, ...overrides.faults },
  }
  const workload = generateWorkload(options.seed, options.messages, options.customers)
  const dir = mkdtempSync(join(tmpdir(), 'idem-incident-'))
  const dbs: Db[] = []
  try {
    const naiveDb = openSubscriptions(join(dir, 'naive.db'), workload.customers)
    dbs.push(naiveDb)
    const naiveRun = await deliver(options, workload, naiveConsumer(naiveDb))

    // Idem's records live in the same SQLite file as the subscriptions, in their own table.
    const idemDb = openSubscriptions(join(dir, 'idem.db'), workload.customers)
    dbs.push(idemDb)
    const store = new SqliteStore({ client: idemDb })
    store.ensureSchema()
    const idem = new Idempotency({ store, scope: 'billing:extend-subscription', ttl: '24h', lease: '30s' })
    const protectedConsumer = idemConsumer(idemDb, idem)
    const idemRun = await deliver(options, workload, protectedConsumer.consume)
    await store.close()

    if (naiveRun.trace.join('\n') !== idemRun.trace.join('\n')) {
      throw new Error('the two brokers diverged: the consumers did not see the same deliveries')
    }
    const { crashesAfterWork, publisherRetries, crashesBeforeWork } = naiveRun.stats
    return {
      options,
      faults: { crashesAfterWork, publisherRetries, crashesBeforeWork },
      naive: outcome(naiveRun, naiveDb, workload.messages),
      idem: outcome(idemRun, idemDb, workload.messages),
      idemRuns: { ...protectedConsumer.stats },
    }
  } finally {
    for (const db of dbs) if (db.open) db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

interface DeliveryRun {
  stats: BrokerStats
  trace: string[]
  delivered: Set<string>
}

/** A fresh broker from the seed: publish the whole workload, then deliver it to `consumer`. */
async function deliver(options: IncidentOptions, workload: Workload, consumer: Consumer): Promise<DeliveryRun> {
  const broker = new SimulatedBroker<PaymentMessage>({ seed: options.seed, faults: options.faults })
  for (const message of workload.messages) broker.publish(message)
  const delivered = new Set<string>()
  await broker.consume(async (delivery) => {
    delivered.add(delivery.message.messageId)
    await consumer(delivery)
  })
  return { stats: broker.stats, trace: broker.trace, delivered }
}

function outcome(run: DeliveryRun, db: Db, published: readonly PaymentMessage[]): ConsumerOutcome {
  return {
    published: run.stats.published,
    deliveries: run.stats.deliveries,
    duplicateDeliveries: run.stats.deliveries - run.delivered.size,
    ...auditSubscriptions(db, published),
  }
}
