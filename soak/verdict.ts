// The soak verdict: every check, its figures, and whether it passed. The run fails if any fails.

import { detectGrowth, type GrowthResult, type Point } from './growth.js'
import type { Errors, Ledger } from './ledger.js'
import type { Sample } from './sampler.js'
import type { StoreName } from './stores.js'

/**
 * Growth over the checked window that still counts as flat. Each is several times the drift
 * measured on clean runs of this machine (docs/reliability.md, section Soak), and far below what a leak
 * of one small object per operation adds: at 400 operations/s a window of 30 s is 12,000
 * operations, so the heap allowance catches a leak of 4 MiB / 12,000 = 350 bytes per operation
 * or more in the one-minute run, and ten times less in a twenty-minute one.
 *
 * - Heap (used, after a forced full GC): what is left is live data, and in steady state that is
 *   the in-flight requests, the harness's bounded rings and the stores' clients: it moves by a few
 *   hundred KiB between samples, with no trend.
 * - RSS: moves with the allocator and V8's page pool, not only with live data, hence the wider
 *   allowance; a real leak shows in the heap (or, for native memory, here by tens of MiB).
 * - Handles: every in-flight request holds a timer or a socket, and pools open connections on
 *   demand (8 sockets per undici pool, 8 per pg pool), so the count steps by a few now and then;
 *   a handle leaked per N operations climbs by operations/N, hundreds over a window.
 */
export const ALLOWANCE = {
  heapBytes: 4 * 2 ** 20,
  rssBytes: 32 * 2 ** 20,
  handles: 12,
} as const

export interface Check {
  name: string
  pass: boolean
  detail: string
}

export interface VerdictInput {
  samples: readonly Sample[]
  /** Start of the growth window, s: the later of the warm-up's end and half the run. */
  windowFromS: number
  ledgers: readonly Ledger[]
  errors: Errors
  stores: readonly StoreName[]
  /** Operations per second over the whole run, to state the smallest leak per operation caught. */
  opsPerS: number
}

const MiB = 2 ** 20
const signed = (n: number, digits = 1) => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`

function growthCheck(
  name: string,
  samples: readonly Sample[],
  from: number,
  allowance: number,
  value: (s: Sample) => number,
  unit: { scale: number; label: string },
  perOpOf?: number,
): Check {
  const points: Point[] = samples.map((s) => ({ t: s.t, value: value(s) }))
  const r: GrowthResult = detectGrowth({ points, from, allowance })
  const fmt = (n: number) => `${signed(n / unit.scale, 2)} ${unit.label}`
  const rate = (n: number) => (unit.scale === 1 ? `${signed(n, 3)} ${unit.label}/s` : `${signed(n / 1024, 1)} KiB/s`)
  const window = `${r.fromS.toFixed(0)}-${r.toS.toFixed(0)} s, ${r.points} samples`
  const first = points.find((p) => p.t >= from)?.value ?? 0
  const last = points[points.length - 1]?.value ?? 0
  const level = `${(first / unit.scale).toFixed(unit.scale === 1 ? 0 : 1)} → ${(last / unit.scale).toFixed(unit.scale === 1 ? 0 : 1)} ${unit.label}`
  const perOp =
    perOpOf !== undefined && perOpOf > 0 ? `; catches a leak of ${Math.ceil(allowance / perOpOf)} B/op or more` : ''
  return {
    name,
    pass: r.pass,
    detail:
      r.reason?.startsWith('inconclusive') === true
        ? r.reason
        : `slope ${rate(r.slopePerS)} over ${window} (${level}): trend ${fmt(r.growth)}, allowed ${fmt(allowance)}${perOp}`,
  }
}

export function verdict(input: VerdictInput): Check[] {
  const { samples, windowFromS: from } = input
  const windowOps = input.opsPerS * ((samples[samples.length - 1]?.t ?? from) - from)
  const checks: Check[] = [
    growthCheck('heap', samples, from, ALLOWANCE.heapBytes, (s) => s.heapUsed, { scale: MiB, label: 'MiB' }, windowOps),
    growthCheck('rss', samples, from, ALLOWANCE.rssBytes, (s) => s.rss, { scale: MiB, label: 'MiB' }),
    growthCheck('handles', samples, from, ALLOWANCE.handles, (s) => s.handlesTotal, { scale: 1, label: 'handles' }),
  ]
  // Each type on its own too, so that a leak of one kind is not hidden by another kind's noise.
  const types = new Set(samples.filter((s) => s.t >= from).flatMap((s) => Object.keys(s.handles)))
  for (const type of [...types].sort()) {
    const c = growthCheck(`handles ${type}`, samples, from, ALLOWANCE.handles, (s) => s.handles[type] ?? 0, {
      scale: 1,
      label: 'handles',
    })
    if (!c.pass) checks.push(c)
  }

  for (const store of input.stores) {
    let worst: Sample | undefined
    for (const s of samples) {
      const ratio = (s.storeSize[store] ?? 0) / Math.max(1, s.storeBound[store] ?? 0)
      if (worst === undefined || ratio > (worst.storeSize[store] ?? 0) / Math.max(1, worst.storeBound[store] ?? 0))
        worst = s
    }
    const size = worst?.storeSize[store] ?? 0
    const bound = worst?.storeBound[store] ?? 0
    const last = samples[samples.length - 1]
    checks.push({
      name: `${store} size`,
      pass: worst !== undefined && size <= bound,
      detail:
        `at most ${((size / Math.max(1, bound)) * 100).toFixed(0)}% of what ttl x rate allows ` +
        `(${size} records at ${worst?.t.toFixed(0)} s, allowed ${bound}); at the end ${last?.storeSize[store]} of ${last?.storeBound[store]}`,
    })
  }

  const keys = input.ledgers.reduce((n, l) => n + l.keys, 0)
  const executions = input.ledgers.reduce((n, l) => n + l.executions, 0)
  const doubles = input.ledgers.reduce((n, l) => n + l.doubleExecutions, 0)
  const unequal = input.ledgers.filter((l) => l.executions !== l.keys)
  checks.push({
    name: 'exactly once',
    pass: doubles === 0 && unequal.length === 0,
    detail:
      `${executions} executions for ${keys} keys, ${doubles} keys executed twice` +
      unequal.map((l) => `; ${l.name}: ${l.executions} executions for ${l.keys} keys`).join('') +
      input.ledgers.flatMap((l) => l.doubled.map((d) => `; ${l.name}: ${d}`)).join(''),
  })
  const duplicates = input.ledgers.reduce((n, l) => n + l.duplicates, 0)
  const replayed = input.ledgers.reduce((n, l) => n + l.replayed, 0)
  checks.push({
    name: 'duplicates replayed',
    pass: input.ledgers.every((l) => l.replayed === l.duplicates),
    detail: `${replayed} replays for ${duplicates} duplicates sent`,
  })
  const inFlight = input.ledgers.reduce((n, l) => n + l.inFlight, 0)
  checks.push({
    name: 'drained',
    pass: inFlight === 0,
    detail: `${inFlight} requests or messages unanswered after the traffic stopped`,
  })
  checks.push({
    name: 'errors',
    pass: input.errors.count === 0,
    detail: input.errors.count === 0 ? 'none' : `${input.errors.count}: ${input.errors.first.join(' | ')}`,
  })
  return checks
}
