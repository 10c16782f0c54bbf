// Interleaved rounds: every workload of a table is measured once per round, ours next to its
// floor, and the order flips every round, so that drift on a shared machine touches both sides.
// Figures are medians over rounds; a ratio is the median of the per-round ratios.

import { measure, median, percentile, type Workload } from './measure.js'

export interface RoundsOptions<N extends string> {
  rounds: number
  /** Time budget per workload per round. */
  seconds: number
  /** Concurrency of every workload, unless `concurrencyOf` names another for it. */
  concurrency: number
  concurrencyOf?: Partial<Record<N, number>>
  sampleScale?: number
  /** Progress line prefix on stderr, e.g. `concurrency 64`. */
  label: string
  /** When given, filled with each measurement's 99th percentile latency in ms (one per round). */
  p99?: Partial<Record<N, number[]>>
}

/** Ops/s of each workload, one figure per round, measured in `order` (reversed every other round). */
export async function interleavedRounds<N extends string>(
  workloads: Record<N, Workload>,
  order: readonly N[],
  options: RoundsOptions<N>,
): Promise<Record<N, number[]>> {
  const figures = Object.fromEntries(order.map((name) => [name, [] as number[]])) as unknown as Record<N, number[]>
  for (let round = 0; round < options.rounds; round++) {
    process.stderr.write(`  ${options.label}: round ${round + 1}/${options.rounds}\n`)
    // Flip the order every round: within a row, ours goes first once and second the next time.
    const sequence = round % 2 === 0 ? order : [...order].reverse()
    for (const name of sequence) {
      const latencies = options.p99 === undefined ? undefined : ([] as number[])
      figures[name].push(
        await measure(workloads[name], {
          seconds: options.seconds,
          concurrency: options.concurrencyOf?.[name] ?? options.concurrency,
          sampleScale: options.sampleScale ?? 1,
          latencies,
        }),
      )
      if (options.p99 !== undefined && latencies !== undefined) {
        const p99 = options.p99[name] ?? []
        options.p99[name] = p99
        p99.push(percentile(latencies, 99))
      }
    }
  }
  return figures
}

/** A line of a table: `ours` against `floor` (or any two workloads: the ratio is ours / floor). */
export interface Pair<N extends string> {
  label: string
  ours: N
  floor: N
}

export interface PairResult<R> {
  row: R
  ours: number
  floor: number
  ratio: number
  minRatio: number
  maxRatio: number
}

/** Medians over rounds of both sides, and the median, min and max of the per-round ratios ours / floor. */
export function comparePair<N extends string, R extends Pair<N>>(
  row: R,
  figures: Record<N, readonly number[]>,
  scale: Partial<Record<N, number>> = {},
): PairResult<R> {
  const ours = figures[row.ours].map((v) => v * (scale[row.ours] ?? 1))
  const floor = figures[row.floor].map((v) => v * (scale[row.floor] ?? 1))
  const ratios = ours.map((value, i) => value / (floor[i] as number))
  return {
    row,
    ours: median(ours),
    floor: median(floor),
    ratio: median(ratios),
    minRatio: Math.min(...ratios),
    maxRatio: Math.max(...ratios),
  }
}

export function summarize<N extends string, R extends Pair<N>>(
  rows: readonly R[],
  figures: Record<N, readonly number[]>,
  scale: Partial<Record<N, number>> = {},
): PairResult<R>[] {
  return rows.map((row) => comparePair(row, figures, scale))
}
