// Transaction-mode benchmark: one business transaction (extend a subscription, record its payment)
// run bare with the driver and through idem.transaction, on SQLite, PostgreSQL and MariaDB, in the
// same run and on the same pool; goals: Idem adds at most 30% to the bare transaction's time on
// PostgreSQL and MariaDB, at most 10 µs on SQLite.
//
//   npx tsx bench/transaction.ts            full run (about 3 minutes)
//   npx tsx bench/transaction.ts --quick    smoke run for CI (a few hundred transactions per case)
//   add --strict to exit 1 when the goal is not met; --no-mysql / --no-postgres to leave one out,
//   --only=sqlite (or postgres, mysql) to run one database alone
//
// Cases alternate transaction by transaction (bare, Idem new key, Idem new key whose function
// returns nothing, Idem duplicate, rotating which goes first), so that drift and the disk's fsync
// stalls on a shared machine touch all of them.
// The time ratio is the median Idem transaction over the median bare one, per round; the table
// gives the median of the rounds and their spread. A profile per database follows.

import { performance } from 'node:perf_hooks'
import { reachable } from '../test/reachable.js'
import { machineLine } from './lib/machine.js'
import { median } from './lib/measure.js'
import { formatTable, opsFmt } from './lib/report.js'
import { loadLine } from './stores/run.js'
import { profile, walFramesLine } from './transaction/profile.js'
import {
  idemOn,
  mysqlTarget,
  postgresTarget,
  resultOf,
  SUBSCRIPTIONS,
  sqliteTarget,
  type Target,
} from './transaction/targets.js'

/**
 * The goals: on the servers Idem adds at most 30% to the bare transaction's time; on SQLite, whose
 * bare transaction is about 10 µs of in-process work, at most 10 µs (a share of so short a
 * transaction would ask the record's own B-trees to cost next to nothing).
 */
const GOAL = 1.3
const SQLITE_GOAL_US = 10
type Goal = { kind: 'ratio'; at: number } | { kind: 'added'; us: number }
const goalOf = (target: Target): Goal =>
  target.store.inbox.dialect === 'sqlite' ? { kind: 'added', us: SQLITE_GOAL_US } : { kind: 'ratio', at: GOAL }
const goalText = (goal: Goal) =>
  goal.kind === 'ratio' ? `at most +${((goal.at - 1) * 100).toFixed(0)}%` : `at most +${goal.us} µs`
const DATABASES = ['sqlite', 'postgres', 'mysql'] as const
const USAGE = `usage: tsx bench/transaction.ts [--quick] [--strict] [--no-mysql] [--no-postgres] [--only=${DATABASES.join('|')}]`
const args = new Set(process.argv.slice(2))
const onlyArg = [...args].find((arg) => arg.startsWith('--only='))
const only = onlyArg?.slice('--only='.length)
for (const arg of args) {
  const known = ['--quick', '--strict', '--no-mysql', '--no-postgres'].includes(arg) || arg === onlyArg
  if (!known || (only !== undefined && !(DATABASES as readonly string[]).includes(only))) {
    console.error(`unknown argument ${arg}; ${USAGE}`)
    process.exit(2)
  }
}
/** Whether `database` runs: not left out by --no-<database>, and the one --only names if given. */
const runs = (database: (typeof DATABASES)[number]) =>
  (only === undefined || only === database) && !args.has(`--no-${database}`)
const quick = args.has('--quick')
const settings = quick
  ? { warmup: 20, rounds: 2, seconds: 0.25, minOps: 60, replayKeys: 32, profileIterations: 20 }
  : { warmup: 200, rounds: 9, seconds: 4, minOps: 300, replayKeys: 1024, profileIterations: 400 }

type Case = 'bare' | 'idem' | 'idemVoid' | 'replay'
const CASES: readonly Case[] = ['bare', 'idem', 'idemVoid', 'replay']
type Measured = Exclude<Case, 'bare'>
const MEASURED: readonly Measured[] = ['idem', 'idemVoid', 'replay']

function operations(target: Target): Record<Case, () => Promise<unknown>> {
  const idem = idemOn(target)
  const run = `${process.pid}-${Date.now()}`
  let n = 0
  let replays = 0
  const ours = (key: string, sub: number) =>
    idem.transaction(target.db, { key, payload: { subscription: sub, amount: 999 } }, async (_tx, ctx) => {
      await target.business(ctx.sql, sub)
      return resultOf(sub)
    })
  // The same with a function that returns nothing, as most inbox consumers' handlers do.
  const oursVoid = (key: string, sub: number) =>
    idem.transaction(target.db, { key, payload: { subscription: sub, amount: 999 } }, async (_tx, ctx) => {
      await target.business(ctx.sql, sub)
    })
  return {
    bare: () => target.bare((n++ % SUBSCRIPTIONS) + 1),
    idem: () => ours(`new-${run}-${n}`, (n++ % SUBSCRIPTIONS) + 1),
    idemVoid: () => oursVoid(`void-${run}-${n}`, (n++ % SUBSCRIPTIONS) + 1),
    replay: () => {
      const i = replays++ % settings.replayKeys
      return ours(`dup-${run}-${i}`, i + 1)
    },
  }
}

/** Complete the duplicates' keys first, and check that a duplicate replays without running its function. */
async function prepare(target: Target, ops: Record<Case, () => Promise<unknown>>): Promise<void> {
  for (let i = 0; i < settings.replayKeys; i++) await ops.replay()
  let ran = false
  const outcome = (await idemOn(target).transaction(target.db, { key: 'never-new' }, () => 1)).status
  const again = await idemOn(target).transaction(target.db, { key: 'never-new' }, () => {
    ran = true
    return 2
  })
  if (outcome !== 'executed' || again.status !== 'replayed' || again.value !== 1 || ran) {
    throw new Error(`bench: on ${target.label} a duplicate did not replay`)
  }
}

/** One round: the cases alternate, one transaction each in turn, until `seconds` and `minOps` are reached. */
async function round(ops: Record<Case, () => Promise<unknown>>, seconds: number, minOps: number) {
  const latencies = Object.fromEntries(CASES.map((c) => [c, [] as number[]])) as Record<Case, number[]>
  const startedAt = performance.now()
  for (let i = 0; i < minOps || performance.now() - startedAt < seconds * 1000; i++) {
    for (let k = 0; k < CASES.length; k++) {
      const name = CASES[(i + k) % CASES.length] as Case
      const t0 = performance.now()
      await ops[name]()
      latencies[name].push(performance.now() - t0)
    }
  }
  return latencies
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length
const pct = (t: number) => `${t >= 1 ? '+' : ''}${((t - 1) * 100).toFixed(0)}%`

async function bench(target: Target): Promise<boolean> {
  const ops = operations(target)
  await prepare(target, ops)
  process.stderr.write(`${target.label}: warming up\n`)
  for (let i = 0; i < settings.warmup; i++) for (const name of CASES) await ops[name]()
  const all = Object.fromEntries(CASES.map((c) => [c, [] as number[]])) as Record<Case, number[]>
  const ratios: Record<Measured, number[]> = { idem: [], idemVoid: [], replay: [] }
  const added: Record<Measured, number[]> = { idem: [], idemVoid: [], replay: [] }
  for (let r = 0; r < settings.rounds; r++) {
    process.stderr.write(`  ${target.label}: round ${r + 1}/${settings.rounds}\n`)
    const latencies = await round(ops, settings.seconds, settings.minOps)
    for (const c of CASES) all[c].push(...latencies[c])
    for (const c of MEASURED) {
      ratios[c].push(median(latencies[c]) / median(latencies.bare))
      added[c].push(median(latencies[c]) - median(latencies.bare))
    }
  }
  const goal = goalOf(target)
  const pass = () => (goal.kind === 'ratio' ? median(ratios.idem) <= goal.at : median(added.idem) * 1000 <= goal.us)
  const row = (label: string, c: Measured, withGoal: boolean) => {
    const time = median(ratios[c])
    return [
      label,
      opsFmt.format(1000 / mean(all[c])),
      opsFmt.format(1000 / mean(all.bare)),
      `${(median(all[c]) * 1000).toFixed(0)} / ${(median(all.bare) * 1000).toFixed(0)}`,
      `${median(added[c]) >= 0 ? '+' : ''}${(median(added[c]) * 1000).toFixed(0)}`,
      time.toFixed(2),
      pct(time),
      `${Math.min(...ratios[c]).toFixed(2)}-${Math.max(...ratios[c]).toFixed(2)}`,
      withGoal
        ? `${goal.kind === 'ratio' ? `<= ${goal.at.toFixed(2)}` : `<= +${goal.us} µs`} ${pass() ? 'PASS' : 'FAIL'}`
        : '-',
    ]
  }
  const header = [
    'case',
    'Idem ops/s',
    'bare ops/s',
    'median µs',
    'added µs',
    'time ratio',
    'overhead',
    'rounds',
    'goal',
  ]
  console.log(`\n${target.label}: ${all.bare.length} transactions per case`)
  console.log(
    formatTable(header, [
      row('new key: idem.transaction vs bare', 'idem', true),
      row('new key, function returns nothing', 'idemVoid', false),
      row('duplicate: replay vs bare', 'replay', false),
    ]),
  )
  const time = median(ratios.idem)
  const met = pass()
  const addedUs = median(added.idem) * 1000
  console.log(
    `${met ? 'PASS' : 'FAIL'}  ${target.label}: Idem adds ${pct(time)} (${addedUs >= 0 ? '+' : ''}${addedUs.toFixed(0)} µs) to the bare transaction's time (goal: ${goalText(goal)})`,
  )
  process.stderr.write(`  ${target.label}: profile\n`)
  console.log(`\n${target.label} profile (${settings.profileIterations} transactions per line, one held connection):`)
  console.log(await profile(target, settings.profileIterations))
  const frames = await walFramesLine(target, settings.profileIterations)
  if (frames !== undefined) console.log(frames)
  return met
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  console.log(machineLine())
  console.log(loadLine('at start'))
  console.log(
    `method: ${quick ? 'QUICK (smoke run, figures indicative only), ' : ''}concurrency 1; ${settings.warmup} warm-up transactions per case; ` +
      `${settings.rounds} rounds (each at least ${settings.seconds} s and ${settings.minOps} transactions per case), the cases alternating ` +
      `transaction by transaction; time ratio and added µs: medians of the rounds' median-vs-median; ` +
      `new keys each call; duplicates cycle through ${settings.replayKeys} completed keys`,
  )
  const makers: (() => Promise<Target>)[] = runs('sqlite') ? [sqliteTarget] : []
  if (runs('postgres')) {
    if (await reachable(5432)) makers.push(postgresTarget)
    else console.log('postgres: not reachable on 127.0.0.1:5432, left out')
  }
  if (runs('mysql')) {
    if (await reachable(3306)) makers.push(mysqlTarget)
    else console.log('mariadb: not reachable on 127.0.0.1:3306, left out')
  }
  let notMet = 0
  for (const make of makers) {
    const target = await make()
    const stop = () => void target.close().finally(() => process.exit(130))
    process.once('SIGINT', stop)
    try {
      console.log(`\n${target.line}`)
      if (!(await bench(target))) notMet++
    } finally {
      process.removeListener('SIGINT', stop)
      await target.close()
    }
  }
  console.log(`\n${loadLine('at end')}`)
  console.log(`total ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
  if (notMet > 0 && args.has('--strict')) process.exitCode = 1
}

await main()
