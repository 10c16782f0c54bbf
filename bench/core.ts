// Core benchmark: Idempotency.run on MemoryStore and SqliteStore, and replays from the local
// cache, each against the raw primitive it stands on (the floor, bench/docs/core.md), measured in the same run.
//
//   npm run bench                  full run (about 80 s)
//   npx tsx bench/core.ts --quick  smoke run for CI (a few seconds; figures indicative only)
//   add --strict to exit 1 when a goal fails
//
// Rounds interleave ours and the floor (the order flips every round), so that drift on a shared
// machine touches both; each figure is the median over rounds, each ratio the median of the
// per-round ratios. Peers (Powertools, @node-idempotency/core) belong to bench/stores.ts.

import { performance } from 'node:perf_hooks'
import { interleavedRounds, type PairResult, summarize } from './lib/interleave.js'
import { machineLine } from './lib/machine.js'
import { measure } from './lib/measure.js'
import { formatTable, opsFmt, ratioText } from './lib/report.js'
import { type Bench, createBench, ORDER, ROWS, type Row, type WorkloadName } from './lib/workloads.js'

interface Settings {
  warmupSeconds: number
  sampleScale: number
  /** Concurrency 1: the main figure, with the goals. */
  main: { rounds: number; seconds: number }
  /** Concurrency 64: a second, informative table. */
  concurrent: { rounds: number; seconds: number; concurrency: number }
}

const args = new Set(process.argv.slice(2))
for (const arg of args) {
  if (arg !== '--quick' && arg !== '--strict') {
    console.error(`unknown argument ${arg}; usage: tsx bench/core.ts [--quick] [--strict]`)
    process.exit(2)
  }
}
const quick = args.has('--quick')
const settings: Settings = quick
  ? {
      warmupSeconds: 0.05,
      sampleScale: 0.25,
      main: { rounds: 1, seconds: 0.1 },
      concurrent: { rounds: 1, seconds: 0.05, concurrency: 64 },
    }
  : {
      warmupSeconds: 0.3,
      sampleScale: 1,
      main: { rounds: 5, seconds: 1 },
      concurrent: { rounds: 3, seconds: 0.5, concurrency: 64 },
    }

type Figures = Record<WorkloadName, number[]>

function run(bench: Bench, name: WorkloadName, seconds: number, concurrency: number): Promise<number> {
  return measure(bench.workloads[name], { seconds, concurrency, sampleScale: settings.sampleScale })
}

function rounds(bench: Bench, count: number, seconds: number, concurrency: number): Promise<Figures> {
  return interleavedRounds(bench.workloads, ORDER, {
    rounds: count,
    seconds,
    concurrency,
    sampleScale: settings.sampleScale,
    label: `concurrency ${concurrency}`,
  })
}

type RowResult = PairResult<Row>

const goalText = (goal: number): string => (goal >= 10 ? `>= ${goal}x` : `>= ${goal.toFixed(2)}`)

function table(results: RowResult[], withGoals: boolean): string {
  const header = ['case', 'ours ops/s', 'floor ops/s', 'ratio', 'rounds min-max', 'goal']
  const lines = results.map((r) => [
    r.row.label,
    opsFmt.format(r.ours),
    opsFmt.format(r.floor),
    ratioText(r.ratio),
    `${ratioText(r.minRatio)}-${ratioText(r.maxRatio)}`,
    r.row.goal === undefined
      ? '-'
      : withGoals
        ? `${goalText(r.row.goal)} ${r.ratio >= r.row.goal ? 'PASS' : 'FAIL'}`
        : `(${goalText(r.row.goal)} at c=1)`,
  ])
  return formatTable(header, lines)
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  const bench = await createBench()
  try {
    console.log(machineLine())
    console.log(bench.sqliteLine)
    console.log(
      `method: ${quick ? 'QUICK (smoke run, figures indicative only), ' : ''}warm-up ${settings.warmupSeconds} s per case; ` +
        `concurrency 1: ${settings.main.rounds} rounds x ${settings.main.seconds} s per case; ` +
        `concurrency ${settings.concurrent.concurrency}: ${settings.concurrent.rounds} rounds x ${settings.concurrent.seconds} s; ` +
        'ours and floor interleaved, medians over rounds',
    )

    process.stderr.write('warming up\n')
    for (const name of ORDER) await run(bench, name, settings.warmupSeconds, 1)
    for (const name of ORDER) await run(bench, name, settings.warmupSeconds / 2, settings.concurrent.concurrency)

    const main = summarize(ROWS, await rounds(bench, settings.main.rounds, settings.main.seconds, 1))
    const { concurrency } = settings.concurrent
    const concurrent = summarize(
      ROWS,
      await rounds(bench, settings.concurrent.rounds, settings.concurrent.seconds, concurrency),
    )

    console.log('\nconcurrency 1 (sequential awaits): the main figure')
    console.log(table(main, true))
    console.log(
      `\nconcurrency ${concurrency} (batches of ${concurrency} started together, then Promise.all): informative`,
    )
    console.log(table(concurrent, false))

    console.log('')
    let failed = 0
    for (const r of main) {
      if (r.row.goal === undefined) continue
      const pass = r.ratio >= r.row.goal
      if (!pass) failed++
      console.log(`${pass ? 'PASS' : 'FAIL'}  ${r.row.goalText}: ${ratioText(r.ratio)}`)
    }
    console.log(`\ntotal ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    if (failed > 0 && args.has('--strict')) process.exitCode = 1
  } finally {
    bench.close()
  }
}

await main()
