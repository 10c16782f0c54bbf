// The method every throughput table of bench/stores.ts follows: warm-up, then interleaved rounds
// at concurrency 1 and at 64 (bench/lib/interleave.ts), then one table per concurrency whose
// ratios are medians of per-round ratios, with the goals that apply marked PASS or FAIL.

import { interleavedRounds, type Pair, summarize } from '../lib/interleave.js'
import { measure, type Workload } from '../lib/measure.js'
import { formatTable, opsFmt, ratioText } from '../lib/report.js'
import type { BenchRun } from './run.js'

export interface Row<N extends string> extends Pair<N> {
  /** Minimum ratio ours / floor; undefined for informative rows. */
  goal?: number
  goalText?: string
  /** Concurrencies the goal is judged at; default every one. */
  goalAt?: readonly number[]
}

export interface Columns {
  ours: string
  floor: string
}

export type Figures<N extends string> = Record<N, number[]>

export async function warmUp<N extends string>(
  run: BenchRun,
  workloads: Record<N, Workload>,
  order: readonly N[],
  concurrencies: readonly number[],
): Promise<void> {
  const { warmupSeconds, sampleScale } = run.settings
  process.stderr.write('  warming up\n')
  for (const concurrency of concurrencies) {
    const seconds = concurrency === 1 ? warmupSeconds : warmupSeconds / 2
    for (const name of order) await measure(workloads[name], { seconds, concurrency, sampleScale })
  }
}

/** Interleaved rounds at concurrency 1 and at `settings.concurrency`. */
export async function measureBoth<N extends string>(
  run: BenchRun,
  workloads: Record<N, Workload>,
  order: readonly N[],
  concurrencyOf: Partial<Record<N, number>> = {},
): Promise<Map<number, Figures<N>>> {
  const { c1, c64, concurrency, sampleScale } = run.settings
  await warmUp(run, workloads, order, [1, concurrency])
  const figures = new Map<number, Figures<N>>()
  figures.set(
    1,
    await interleavedRounds(workloads, order, { ...c1, concurrency: 1, sampleScale, label: 'concurrency 1' }),
  )
  figures.set(
    concurrency,
    await interleavedRounds(workloads, order, {
      ...c64,
      concurrency,
      concurrencyOf,
      sampleScale,
      label: `concurrency ${concurrency}`,
    }),
  )
  return figures
}

const goalText = (goal: number): string => (goal >= 10 ? `>= ${goal}x` : `>= ${goal.toFixed(2)}`)

/** Print one table (one concurrency) and record the goals judged at it. */
export function printTable<N extends string>(
  run: BenchRun,
  title: string,
  rows: readonly Row<N>[],
  figures: Figures<N>,
  concurrency: number,
  columns: Columns,
  scale: Partial<Record<N, number>> = {},
): void {
  const results = summarize(rows, figures, scale)
  const header = ['case', columns.ours, columns.floor, 'ratio', 'rounds min-max', 'goal']
  const lines = results.map((r) => {
    const { goal, goalAt } = r.row
    let judged = '-'
    if (goal !== undefined) {
      if (goalAt === undefined || goalAt.includes(concurrency)) {
        const pass = r.ratio >= goal
        judged = `${goalText(goal)} ${pass ? 'PASS' : 'FAIL'}`
        run.goal(`${r.row.goalText ?? r.row.label}, concurrency ${concurrency}`, ratioText(r.ratio), pass)
      } else {
        judged = `(${goalText(goal)} at c=${goalAt.join(', ')})`
      }
    }
    return [
      r.row.label,
      opsFmt.format(r.ours),
      opsFmt.format(r.floor),
      ratioText(r.ratio),
      `${ratioText(r.minRatio)}-${ratioText(r.maxRatio)}`,
      judged,
    ]
  })
  console.log(`\n${title}`)
  console.log(formatTable(header, lines))
}
