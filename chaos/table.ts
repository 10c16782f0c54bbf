// The chaos run's report: one row per combination, and the rule that decides whether the run passed.

import type { CombinationResult } from './combination.js'
import { inTransactionMode } from './transaction-modes.js'

const HEADER = [
  'combination',
  'store mode',
  'msgs',
  'faults injected',
  'applied',
  'doubled',
  'lost',
  'dead',
  'fenced',
  'complete retries',
  'time',
] as const

function faults(r: CombinationResult): string {
  const f = r.faults
  // wipe only when the run drew it (only asked for with --faults): the usual rows read as before.
  const wipe = f.wipe > 0 ? ` wipe ${f.wipe}` : ''
  return `kill ${f.kill} stall ${f.stall} cut ${f.cut} lat ${f.latency} bh ${f.blackhole} restart ${f.restart}${wipe} skew ${f.skewed}`
}

function doubled(r: CombinationResult): string {
  const v = r.verdict
  if (r.naive) return String(v.doubled)
  const causes = [
    ...(v.takeoverDoubles > 0 ? [`${v.takeoverDoubles} takeover`] : []),
    ...(v.wipeDoubles > 0 ? [`${v.wipeDoubles} after a wipe`] : []),
  ]
  return causes.length > 0 ? `${v.doubled} (${causes.join(', ')})` : String(v.doubled)
}

export function formatTable(results: readonly CombinationResult[]): string {
  const rows = results.map((r) => [
    r.naive ? `${r.broker} CONTROL` : r.broker,
    r.store,
    String(r.messages),
    faults(r),
    String(r.verdict.applied),
    doubled(r),
    String(r.verdict.lost),
    String(r.deadLettered),
    String(r.leaseLost),
    String(r.completeErrors),
    `${r.seconds.toFixed(1)} s`,
  ])
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)))
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`
  return [line(HEADER), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/**
 * Why the run failed: empty when it passed. Transaction mode promises exactly-once effects: any
 * double fails. run() mode promises at-least-once execution with deduplication: a double made by a
 * takeover (the first execution's outcome never stored: killed, stalled past its lease, or the
 * store unreachable at completion) is inside that promise and fails only with `strict`; a double
 * under one claim is not, and always fails. A double after a wipe (the store restarted empty and
 * forgot the record) is outside what Idem can promise over a store that forgets: shown, and
 * failing only with `strict`.
 */
export function failures(results: readonly CombinationResult[], strict: boolean): string[] {
  const out: string[] = []
  for (const r of results) {
    const v = r.verdict
    if (r.errors.length > 0) out.push(`${r.name}: ${r.errors.length} worker(s) died on their own: ${r.errors[0]}`)
    if (v.unknown > 0) out.push(`${r.name}: ${v.unknown} charges of payments never published (harness bug)`)
    if (r.naive) {
      // The control proves the faults and the judge can catch a double; without one, nothing was tested.
      if (v.doubled === 0) out.push(`${r.name}: the control (no Idem) shows no double: the harness tested nothing`)
      continue
    }
    if (v.lost > 0) out.push(`${r.name}: ${v.lost} payments lost`)
    const allowed = !inTransactionMode(r.store) && !strict ? v.takeoverDoubles + v.wipeDoubles : 0
    if (v.doubled > allowed) {
      out.push(
        `${r.name}: ${v.doubled} payments doubled (${v.takeoverDoubles} by a takeover, ${v.wipeDoubles} after a wipe)`,
      )
    }
    if (r.deadLettered > 0) out.push(`${r.name}: ${r.deadLettered} payments dead-lettered`)
  }
  return out
}

/** The last line of a run that passed: what behind Idem was doubled, and why that passes. */
export function passedSummary(results: readonly CombinationResult[]): string {
  const takeovers = results.reduce((n, r) => n + (r.naive ? 0 : r.verdict.takeoverDoubles), 0)
  const afterWipes = results.reduce((n, r) => n + (r.naive ? 0 : r.verdict.wipeDoubles), 0)
  const control = results.some((r) => r.naive) ? '; the control doubled' : ''
  if (takeovers === 0 && afterWipes === 0) return `PASSED: no payment doubled or lost behind Idem${control}.`
  const allowed = [
    ...(takeovers > 0 ? [`${takeovers} run() mode takeover double(s) (at-least-once)`] : []),
    ...(afterWipes > 0 ? [`${afterWipes} double(s) after a wipe (a store that forgets cannot deduplicate)`] : []),
  ]
  return `PASSED: no payment lost behind Idem, none doubled in transaction mode; ${allowed.join(', ')}, see docs/reliability.md${control}.`
}
