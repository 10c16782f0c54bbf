// One consumer process of the chaos run: consumes the payments of one combination (broker × store
// mode) and charges each in the ledger, behind Idem, or without it (the control). The run SIGKILLs,
// SIGSTOPs and restarts these processes; they report their counters over IPC.

import { Idempotency } from 'idem'
import pg from 'pg'
import { consumeWithIdem } from './idem-consumers.js'
import { charge, chargeInTransaction, type LedgerDialect } from './ledger.js'
import { consumeNaively } from './naive-consumers.js'
import { type ChaosStore, openStore } from './stores.js'
import { type WorkerConfig, type WorkerCounters, type WorkerMessage, ZERO_COUNTERS } from './worker-config.js'

// Until the consumer is up, a SIGTERM has nothing to hand back: leave at once.
let shutdown: () => unknown = () => process.exit(0)
process.once('SIGTERM', () => shutdown())

const config = JSON.parse(process.env.CHAOS_WORKER ?? 'null') as WorkerConfig | null
if (config === null) throw new Error('chaos/worker.ts is started by the chaos run (CHAOS_WORKER)')

const counters: WorkerCounters = { ...ZERO_COUNTERS }
const send = (message: WorkerMessage) => process.send?.(message)

// The ledger of run() modes is the judge's database, reached directly (not through a proxy): a
// fault there would be a fault of the judge. Transaction modes write it in the store's database,
// on the transaction's handle.
const ledger = new pg.Pool({ connectionString: config.ledgerUrl, max: 4 })
ledger.on('error', () => {})

let store: ChaosStore | undefined
let consumer: { close(): Promise<void> }
if (config.naive) {
  consumer = await consumeNaively(config, (payment) =>
    charge(ledger, { run: config.run, combo: config.combo, payment, attempt: 0 }).then(() => {
      counters.executed++
    }),
  )
} else {
  store = await openStore(config)
  const idem = new Idempotency({ store: store.store, scope: `chaos:${config.combo}`, ttl: '1h' })
  idem.on('lease_lost', () => counters.leaseLost++)
  idem.on('store_error', (e) => {
    if (e.operation === 'complete') counters.completeErrors++
  })
  const dialect = store.sqlDatabase?.dialect as LedgerDialect | undefined
  consumer = await consumeWithIdem({
    config,
    idem,
    sqlDatabase: store.sqlDatabase,
    charge: (tx, payment, attempt) => {
      const row = { run: config.run, combo: config.combo, payment, attempt }
      return dialect === undefined ? charge(ledger, row) : chargeInTransaction({ dialect, tx, charge: row })
    },
    counters,
  })
}

const timer = setInterval(() => send({ counters: { ...counters } }), 200)
shutdown = async () => {
  clearInterval(timer)
  await consumer.close()
  await store?.close()
  await ledger.end()
  process.send?.({ counters: { ...counters } }, () => process.exit(0))
}
send({ ready: true })
