// The soak report: a table of samples at about every tenth of the run, the handles by type, and
// the verdict with its figures.

import type { Ledger } from './ledger.js'
import type { Sample } from './sampler.js'
import type { StoreName } from './stores.js'
import type { Check } from './verdict.js'

const MiB = 2 ** 20

/** The samples nearest each tenth of the run (0% is the first sample). */
export function tenths(samples: readonly Sample[], durationS: number): Sample[] {
  const picked: Sample[] = []
  for (let i = 0; i <= 10; i++) {
    const target = (durationS * i) / 10
    let best: Sample | undefined
    for (const s of samples) if (best === undefined || Math.abs(s.t - target) < Math.abs(best.t - target)) best = s
    if (best !== undefined && !picked.includes(best)) picked.push(best)
  }
  return picked
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padStart(widths[i] as number)).join(' | ')} |`
  const rule = `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`
  return [line(rows[0] as string[]), rule, ...rows.slice(1).map(line)].join('\n')
}

export function samplesTable(samples: readonly Sample[], stores: readonly StoreName[], durationS: number): string {
  const head = [
    't (s)',
    'ops/s',
    'heap MiB',
    'RSS MiB',
    'loop p99 ms',
    'handles',
    ...stores.map((s) => `${s} records (allowed)`),
    'replayed',
    'shed',
    'errors',
  ]
  const rows = tenths(samples, durationS).map((s) => [
    s.t.toFixed(0),
    s.opsPerS.toFixed(0),
    (s.heapUsed / MiB).toFixed(1),
    (s.rss / MiB).toFixed(1),
    s.eldP99Ms.toFixed(1),
    String(s.handlesTotal),
    ...stores.map((name) => `${s.storeSize[name]} (${s.storeBound[name]})`),
    String(s.replayed),
    String(s.shed),
    String(s.errors),
  ])
  return table([head, ...rows])
}

export function handlesLine(sample: Sample | undefined): string {
  if (sample === undefined) return '(no sample)'
  return Object.entries(sample.handles)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${type} ${n}`)
    .join(', ')
}

export function trafficLines(ledgers: readonly Ledger[]): string[] {
  return ledgers.map(
    (l) =>
      `  ${l.name.padEnd(18)} ${String(l.sent).padStart(7)} sent, ${String(l.keys).padStart(7)} keys, ` +
      `${String(l.duplicates).padStart(6)} duplicates, ${String(l.replayed).padStart(6)} replayed, ` +
      `${String(l.executions).padStart(7)} executions, ${l.retriedInProgress} retried while in progress, ${l.shed} shed`,
  )
}

export function verdictLines(checks: readonly Check[]): string[] {
  const width = Math.max(...checks.map((c) => c.name.length))
  return checks.map((c) => `  ${c.pass ? 'pass' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`)
}
