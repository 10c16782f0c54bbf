// One combination of the chaos run (a broker × a store mode, or the control): publish the
// payments, run the workers, inject faults for a while, wait until the queue drains, and judge the
// ledger.

import { join } from 'node:path'
import { createPrng, type Prng } from '../examples/incident/prng.js'
import { type BrokerSide, openBroker } from './brokers.js'
import { type FaultCounts, type FaultKind, injectFaults } from './faults.js'
import { Fleet } from './fleet.js'
import { judge, type Verdict, type Wipe } from './judge.js'
import { openJudgeLedger } from './ledger.js'
import type { ChaosPayment } from './payment.js'
import { pgPool } from './stores.js'
import type { BrokerName, StoreMode } from './worker-config.js'
import type { Faultable, ServerName, World } from './world.js'

export interface CombinationOptions {
  world: World
  run: string
  seed: number
  broker: BrokerName
  store: StoreMode
  /** The control: same workload and faults, no Idem. */
  naive: boolean
  messages: number
  /** Share of payments the producer publishes twice (a retry after a lost confirmation). */
  duplicateRate: number
  workers: number
  leaseMs: number
  /** How long faults are injected; the payments are published over the first two thirds of it. */
  faultMs: number
  /** After the faults: how long the workers get to drain before what is missing counts as lost. */
  drainMs: number
  /** Where files of the run go (the SQLite store's database). */
  scratchDir: string
  /** The judge's database (the shared PostgreSQL), for run() modes and the control. */
  ledgerUrl: string
  log: (line: string) => void
  /** The fault kinds to draw from. Default: all. */
  faultKinds?: readonly FaultKind[]
}

export interface CombinationResult {
  name: string
  broker: string
  store: string
  naive: boolean
  messages: number
  published: number
  faults: FaultCounts
  verdict: Verdict
  deadLettered: number
  executed: number
  replayed: number
  leaseLost: number
  completeErrors: number
  /** Workers that died while connecting (a fault met at start), started again. */
  startupFailures: number
  /** Workers that died without being killed by the run. */
  errors: string[]
  seconds: number
}

export async function runCombination(o: CombinationOptions): Promise<CombinationResult> {
  const started = Date.now()
  const broker = o.broker
  const storeLabel = o.naive ? 'none (control)' : o.store
  const combo = `${broker}.${o.naive ? 'control' : o.store}`
  const topic = `chaos:${o.run}:${combo}`
  const group = 'payments'
  const rng = createPrng(o.seed, hash(combo))

  // The judge reads the ledger directly, never through a proxy. In transaction modes the ledger
  // is in the store's own database (the private PostgreSQL or MariaDB, the shared SQLite file),
  // so that the charge commits with the record.
  const store = await storeFaultable(o)
  const sqlitePath = join(o.scratchDir, `${combo}.sqlite`)
  const judgeDb = await openJudgeLedger({
    store: o.naive ? 'none' : o.store,
    storeServerPort: store?.server.port,
    ledgerUrl: o.ledgerUrl,
    sqliteFile: sqlitePath,
  })
  // Transaction modes charge on the transaction's handle; this URL is the run() modes' ledger.
  const ledgerUrl = o.ledgerUrl
  if (store !== undefined && (o.store === 'postgres' || o.store === 'transaction-postgres')) {
    const { PostgresStore } = await import('idem/postgres')
    const pool = pgPool(store.server.port)
    await new PostgresStore({ client: pool }).ensureSchema()
    await pool.end()
  }

  const brokerSide = await openBroker(broker, o.world, { topic, group }, o.leaseMs)
  const brokerFaultable = await o.world.get(brokerServer(broker))

  if (store !== undefined && (o.store === 'mysql' || o.store === 'transaction-mysql')) {
    const { MysqlStore } = await import('idem/mysql')
    const { default: mysql } = await import('mysql2/promise')
    const pool = mysql.createPool({ host: '127.0.0.1', port: store.server.port, user: 'root', database: 'chaos' })
    await new MysqlStore({ client: pool }).ensureSchema()
    await pool.end()
  }
  let sqliteFile: string | undefined
  const onSqlite = !o.naive && (o.store === 'sqlite' || o.store === 'transaction-sqlite')
  if (onSqlite) {
    const { SqliteStore } = await import('idem/sqlite')
    const { default: Database } = await import('better-sqlite3')
    sqliteFile = sqlitePath
    const db = new Database(sqliteFile)
    db.pragma('journal_mode = WAL')
    await new SqliteStore({ client: db }).ensureSchema()
    db.close()
  }
  const skewed = !onSqlite
  const fleet = new Fleet({
    size: o.workers,
    // One worker's clock runs five minutes ahead: leases follow the store's clock, not its own.
    // Not with SQLite: its clock is the machine's that holds the file, which every worker shares;
    // a clock faked in one process is not a fault SQLite's workers can meet.
    skewMs: skewed ? [5 * 60_000] : [],
    config: {
      run: o.run,
      combo,
      broker,
      brokerPort: brokerSide.proxyPort,
      topic,
      group,
      store: o.naive ? 'none' : o.store,
      storePort: store?.proxy.port ?? 0,
      sqliteFile,
      ledgerUrl,
      leaseMs: o.leaseMs,
      concurrency: 8,
      naive: o.naive,
    },
  })
  const published: string[] = []
  const wipes: Wipe[] = []
  let faults: FaultCounts | undefined
  try {
    await fleet.start()
    o.log(`${combo}: ${o.workers} workers up, faults for ${o.faultMs} ms`)
    const publishing = publish({
      broker: brokerSide,
      topic,
      rng,
      messages: o.messages,
      duplicateRate: o.duplicateRate,
      overMs: (o.faultMs * 2) / 3,
      published,
    })
    faults = await injectFaults({
      rng,
      fleet,
      broker: brokerFaultable,
      store,
      leaseMs: o.leaseMs,
      durationMs: o.faultMs,
      kinds: o.faultKinds,
      wipes,
      restartBroker: broker !== 'mqtt',
    })
    faults.skewed = skewed ? 1 : 0
    await publishing
    fleet.resumeAll()
    // Drain: every payment charged and nothing pending in the group, or the time is up.
    // Twice as long on the JVM brokers: a restart near the end of the faults takes 15 to 30 s, and
    // Kafka's group then waits out a session and rebalances before the workers fetch again.
    const deadline = Date.now() + o.drainMs * (broker === 'kafka' || broker === 'rocketmq' ? 2 : 1)
    while (Date.now() < deadline) {
      const charged = await judgeDb.chargedCount(o.run, combo).catch(() => 0)
      const pending = await brokerSide.remaining()
      if (charged >= o.messages && pending === 0) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    // A stalled worker that was resumed, or a late takeover, would charge now: let it show.
    await new Promise((resolve) => setTimeout(resolve, o.leaseMs + 1000))
  } finally {
    await fleet.stop()
  }
  const verdict = judge(published, await judgeDb.rows(o.run, combo), wipes)
  const deadLettered = await brokerSide.deadLettered()
  await judgeDb.end()
  await brokerSide.close()
  const totals = fleet.totals()
  return {
    name: combo,
    broker,
    store: storeLabel,
    naive: o.naive,
    messages: o.messages,
    published: published.length,
    faults: faults as FaultCounts,
    verdict,
    deadLettered,
    executed: totals.executed,
    replayed: totals.replayed,
    leaseLost: totals.leaseLost,
    completeErrors: totals.completeErrors,
    startupFailures: fleet.startupFailures,
    errors: fleet.errors,
    seconds: (Date.now() - started) / 1000,
  }
}

interface PublishOptions {
  broker: BrokerSide
  topic: string
  rng: Prng
  messages: number
  duplicateRate: number
  overMs: number
  /** Filled with each payment id as it is published. */
  published: string[]
}

/**
 * Publish the payments at an even pace; some twice, the second copy 5 to 30 payments later (a
 * producer retry after a lost confirmation, late enough to pass a broker's duplicate window).
 */
async function publish(o: PublishOptions): Promise<void> {
  const pauseMs = o.overMs / o.messages
  const retries: { payment: ChaosPayment; at: number }[] = []
  for (let i = 1; i <= o.messages; i++) {
    const payment: ChaosPayment = {
      messageId: `msg-${o.topic}-${i}`,
      paymentId: `pay_${String(i).padStart(6, '0')}`,
      amountCents: o.rng.int(100, 99_999),
    }
    await o.broker.publish(payment)
    o.published.push(payment.paymentId)
    if (o.rng.chance(o.duplicateRate)) retries.push({ payment, at: i + o.rng.int(5, 30) })
    while (retries.length > 0 && (retries[0] as { at: number }).at <= i) {
      await o.broker.publish((retries.shift() as { payment: ChaosPayment }).payment)
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
  for (const { payment } of retries) await o.broker.publish(payment)
}

/** The private servers a combination uses: its broker and its network store. */
export function serversOf(broker: BrokerName, store: StoreMode, naive: boolean): ServerName[] {
  const s = naive ? undefined : storeServer(store)
  return [brokerServer(broker), ...(s === undefined ? [] : [s])]
}

function brokerServer(broker: BrokerName): ServerName {
  if (broker === 'kafka') return 'kafka'
  if (broker === 'rocketmq') return 'rocketmq'
  if (broker === 'rabbitmq') return 'rabbitmq'
  return broker === 'nats' ? 'nats' : broker === 'mqtt' ? 'mosquitto' : 'brokerRedis'
}

/** The network store: none for the control and for SQLite (a local file). */
function storeServer(store: StoreMode): ServerName | undefined {
  switch (store) {
    case 'redis':
      return 'storeRedis'
    case 'postgres':
    case 'transaction-postgres':
      return 'postgres'
    case 'mysql':
    case 'transaction-mysql':
      return 'mariadb'
    default:
      return undefined
  }
}

async function storeFaultable(o: CombinationOptions): Promise<Faultable | undefined> {
  const name = o.naive ? undefined : storeServer(o.store)
  return name === undefined ? undefined : o.world.get(name)
}

function hash(text: string): number {
  let h = 0
  for (const c of text) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0
  return h
}
