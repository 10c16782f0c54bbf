// The chaos run: the payment workload through each broker × store mode under injected faults, on
// private servers (loopback ports 16000–16999), judged by a ledger that never deduplicates.
//
//   npm run chaos                      the long run (about --minutes, default 10)
//   npm run chaos -- --short           the CI run: a representative subset, within 2 minutes
//   npm run chaos -- --seed 7 --only redis-streams:transaction-postgres
//
// Exits non-zero on any doubled or lost payment behind Idem, on a worker that died on its own,
// and when the control (the same consumer without Idem) shows no double.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type CombinationResult, runCombination, serversOf } from './combination.js'
import { FAULT_KINDS, type FaultKind } from './faults.js'
import { killAllWorkers } from './fleet.js'
import { forgetRun } from './ledger.js'
import { killAllServers } from './servers.js'
import { failures, formatTable, passedSummary } from './table.js'
import type { BrokerName, StoreMode } from './worker-config.js'
import { World } from './world.js'

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    // Only these fault kinds, comma-separated (kill,stall,cut,latency,blackhole,restart; wipe, a
    // Redis store restarting empty, only when asked for here).
    faults: { type: 'string' },
    workers: { type: 'string' },
    // Fail on run() mode's takeover doubles too (see failures in table.ts).
    strict: { type: 'boolean', default: false },
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    only: { type: 'string', multiple: true },
    ledger: { type: 'string', default: process.env.IDEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
})

interface Plan {
  broker: BrokerName
  store: StoreMode
  naive: boolean
}

const BROKERS: readonly BrokerName[] = ['redis-streams', 'nats', 'mqtt', 'kafka', 'rabbitmq', 'rocketmq']
const STORES: readonly StoreMode[] = [
  'transaction-postgres',
  'transaction-mysql',
  'transaction-sqlite',
  'postgres',
  'mysql',
  'sqlite',
  'redis',
]
const ALL: readonly Plan[] = BROKERS.flatMap((broker) => [
  { broker, store: 'none' as const, naive: true },
  ...STORES.map((store) => ({ broker, store, naive: false })),
])
const plan = (broker: BrokerName, store: StoreMode | 'control'): Plan =>
  store === 'control' ? { broker, store: 'none', naive: true } : { broker, store, naive: false }
// The short run, within 2 minutes: the control, transaction mode, and a run() mode on each of
// PostgreSQL and Redis, spread over the two brokers.
const SHORT: readonly Plan[] = [
  plan('redis-streams', 'control'),
  plan('redis-streams', 'transaction-postgres'),
  plan('nats', 'postgres'),
  plan('redis-streams', 'redis'),
]

const label = (p: Plan) => `${p.broker}:${p.naive ? 'control' : p.store}`
let plans = values.short ? SHORT : ALL
if (values.only !== undefined) {
  const wanted = new Set(values.only)
  plans = ALL.filter((p) => wanted.has(label(p)))
  if (plans.length === 0) throw new Error(`--only matched nothing; combinations: ${ALL.map(label).join(', ')}`)
}

const faultKinds = values.faults?.split(',').map((k) => k.trim()) as FaultKind[] | undefined
for (const kind of faultKinds ?? []) {
  if (!FAULT_KINDS.includes(kind)) throw new Error(`--faults: unknown kind ${kind}; kinds: ${FAULT_KINDS.join(', ')}`)
}
const seed = values.seed === undefined ? randomBytes(4).readUInt32BE() : Number(values.seed)
const run = `r${Date.now().toString(36)}`
// The short run fits 2 minutes on a loaded 2-core machine: starting worker processes (tsx) is
// most of its cost, so it runs two workers per combination and shorter phases.
const workers = Number(values.workers ?? (values.short ? 2 : 3))
const perCombinationMs = values.short
  ? 10_000
  : Math.max(20_000, (Number(values.minutes) * 60_000) / plans.length - 20_000)
const messages = values.short ? 200 : Math.round(perCombinationMs / 30)

const cleanup = () => {
  killAllWorkers()
  killAllServers()
}
process.once('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanup()
    process.exit(130)
  })
}

const scratchDir = mkdtempSync(join(tmpdir(), 'idem-chaos-'))
process.once('exit', () => rmSync(scratchDir, { recursive: true, force: true }))
const started = Date.now()
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`)
log(`chaos run ${run}, seed ${seed}, ${values.short ? 'short' : 'long'}: ${plans.map(label).join(', ')}`)
const world = new World()
const servers = [...new Set(plans.flatMap((p) => serversOf(p.broker, p.store, p.naive)))]
await world.prepare(servers)
log(`private servers up: ${servers.join(', ')} (ports 16110-16199, proxies beside them)`)
const results: CombinationResult[] = []
try {
  for (const p of plans) {
    const result = await runCombination({
      world,
      run,
      seed,
      broker: p.broker,
      store: p.store,
      naive: p.naive,
      messages,
      duplicateRate: 0.1,
      workers,
      leaseMs: 2000,
      faultMs: perCombinationMs,
      drainMs: values.short ? 20_000 : 30_000,
      faultKinds,
      ledgerUrl: values.ledger,
      scratchDir,
      log,
    })
    results.push(result)
    log(
      `${result.name}: applied ${result.verdict.applied}/${result.messages}, doubled ${result.verdict.doubled}, lost ${result.verdict.lost}`,
    )
  }
} finally {
  await world.stop()
}
console.log()
console.log(formatTable(results))
console.log()
const failed = failures(results, values.strict)
console.log(`seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s in total`)
if (failed.length > 0) {
  console.log(`FAILED:\n- ${failed.join('\n- ')}`)
  console.log(`The ledger rows are kept for inspection: SELECT * FROM chaos_ledger WHERE run = '${run}'`)
  process.exitCode = 1
} else {
  await forgetRun(values.ledger, run)
  console.log(passedSummary(results))
}
