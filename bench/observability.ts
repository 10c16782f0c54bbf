// What observability costs: Idempotency.run with idem/metrics (and idem/tracing) watching it,
// against the same run unwatched, on MemoryStore (where Idem's own CPU is all there is) and on
// RedisStore (a real round trip), measured side by side in one run (bench/docs/observability.md).
//
//   npx tsx bench/observability.ts          full run (about 3 minutes; needs Redis on 127.0.0.1:6379)
//   npx tsx bench/observability.ts --quick  smoke run for CI (figures indicative only)
//   add --strict to exit 1 when a goal fails
//
// Each variant has its own Idempotency over its own store of the same kind; rounds interleave
// the variants (the order flips every round), figures are medians over rounds and each ratio the
// median of the per-round ratios. Tracing runs in three phases: no SDK registered (the API's
// no-op tracer), an SDK whose sampler records nothing, and an SDK that records every span.

import { trace } from '@opentelemetry/api'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { Idempotency, MemoryStore } from 'idem'
import { idemMetrics } from 'idem/metrics'
import { RedisStore } from 'idem/redis'
import { idemTracing } from 'idem/tracing'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { MASK, mustNotRun, PAYLOAD, produce, REPLAY_KEYS, SCOPE } from './lib/fixtures.js'
import { interleavedRounds, type Pair, summarize } from './lib/interleave.js'
import { machineLine } from './lib/machine.js'
import type { Workload } from './lib/measure.js'
import { formatTable, opsFmt, ratioText } from './lib/report.js'

const args = new Set(process.argv.slice(2))
for (const arg of args) {
  if (arg !== '--quick' && arg !== '--strict') {
    console.error(`unknown argument ${arg}; usage: tsx bench/observability.ts [--quick] [--strict]`)
    process.exit(2)
  }
}
const quick = args.has('--quick')
const settings = quick
  ? { warmupSeconds: 0.05, rounds: 1, seconds: 0.1, sampleScale: 0.1 }
  : { warmupSeconds: 0.5, rounds: 15, seconds: 0.6, sampleScale: 1 }

/** The instrumentation a variant attaches to each Idempotency it makes. */
type Watch = (idem: Idempotency) => () => void

const registry = new Registry()
const metrics = idemMetrics({ registry })
const tracing = idemTracing()
const watches = {
  off: (): (() => void) => () => {},
  metrics: (idem: Idempotency) => metrics.watch(idem),
  tracing: (idem: Idempotency) => tracing.watch(idem),
  both: (idem: Idempotency) => {
    const stops = [metrics.watch(idem), tracing.watch(idem)]
    return () => {
      for (const stop of stops) stop()
    }
  },
} satisfies Record<string, Watch>

/** New keys on a fresh MemoryStore every sample (so every variant inserts into maps of the same size). */
function memoryNew(watch: Watch): Workload {
  let n = 0
  let idem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
  let stop = watch(idem)
  return {
    sampleOps: 20_000,
    prepare: () => {
      stop()
      idem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
      stop = watch(idem)
    },
    op: () => idem.run({ key: `n${n++}`, payload: PAYLOAD }, produce),
  }
}

/** Duplicates of REPLAY_KEYS completed keys (replays). */
async function memoryDuplicate(watch: Watch): Promise<Workload> {
  const idem = new Idempotency({ store: new MemoryStore(), scope: SCOPE })
  for (let i = 0; i < REPLAY_KEYS; i++) await idem.run({ key: `d${i}`, payload: PAYLOAD }, produce)
  watch(idem)
  let n = 0
  return { sampleOps: 20_000, op: () => idem.run({ key: `d${n++ & MASK}`, payload: PAYLOAD }, mustNotRun) }
}

function redisNew(redis: Redis, prefix: string, watch: Watch): Workload {
  const idem = new Idempotency({ store: new RedisStore({ client: redis, prefix }), scope: SCOPE })
  watch(idem)
  let n = 0
  return { sampleOps: 2_000, op: () => idem.run({ key: `n${n++}`, payload: PAYLOAD }, produce) }
}

async function redisDuplicate(redis: Redis, prefix: string, watch: Watch): Promise<Workload> {
  const idem = new Idempotency({ store: new RedisStore({ client: redis, prefix }), scope: SCOPE })
  for (let i = 0; i < REPLAY_KEYS; i++) await idem.run({ key: `d${i}`, payload: PAYLOAD }, produce)
  watch(idem)
  let n = 0
  return { sampleOps: 2_000, op: () => idem.run({ key: `d${n++ & MASK}`, payload: PAYLOAD }, mustNotRun) }
}

interface Row extends Pair<string> {
  goal?: number
}

async function measureRows(
  title: string,
  workloads: Record<string, Workload>,
  rows: readonly Row[],
  concurrency: number,
): Promise<{ title: string; results: ReturnType<typeof summarize<string, Row>> }> {
  const order = Object.keys(workloads)
  process.stderr.write(`${title}: warming up\n`)
  await interleavedRounds(workloads, order, {
    rounds: 1,
    seconds: settings.warmupSeconds,
    concurrency,
    sampleScale: settings.sampleScale,
    label: `${title} warm-up`,
  })
  const figures = await interleavedRounds(workloads, order, {
    rounds: settings.rounds,
    seconds: settings.seconds,
    concurrency,
    sampleScale: settings.sampleScale,
    label: title,
  })
  return { title, results: summarize(rows, figures) }
}

function print({ title, results }: Awaited<ReturnType<typeof measureRows>>): number {
  console.log(`\n${title}`)
  let failed = 0
  const lines = results.map((r) => {
    const verdict =
      r.row.goal === undefined ? '-' : `>= ${r.row.goal.toFixed(2)} ${r.ratio >= r.row.goal ? 'PASS' : 'FAIL'}`
    if (r.row.goal !== undefined && r.ratio < r.row.goal) failed++
    return [
      r.row.label,
      opsFmt.format(r.ours),
      opsFmt.format(r.floor),
      ratioText(r.ratio),
      `${ratioText(r.minRatio)}-${ratioText(r.maxRatio)}`,
      verdict,
    ]
  })
  console.log(formatTable(['case', 'watched ops/s', 'unwatched ops/s', 'ratio', 'rounds min-max', 'goal'], lines))
  return failed
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  console.log(machineLine())
  console.log(
    `method: ${quick ? 'QUICK (smoke run, figures indicative only), ' : ''}concurrency 1 (each run awaited), ` +
      `${settings.rounds} rounds x ${settings.seconds} s per variant, variants interleaved, medians over rounds`,
  )
  const redis = new Redis('redis://127.0.0.1:6379')
  const prefix = `idem-bench-observability-${process.pid}:`
  let failed = 0
  try {
    // Phase 1: no OpenTelemetry SDK registered (the API's tracer is a no-op).
    failed += print(
      await measureRows(
        'MemoryStore, no OpenTelemetry SDK',
        {
          newOff: memoryNew(watches.off),
          newMetrics: memoryNew(watches.metrics),
          newTracing: memoryNew(watches.tracing),
          newBoth: memoryNew(watches.both),
          dupOff: await memoryDuplicate(watches.off),
          dupMetrics: await memoryDuplicate(watches.metrics),
          dupBoth: await memoryDuplicate(watches.both),
        },
        [
          { label: 'new key, metrics', ours: 'newMetrics', floor: 'newOff', goal: 0.95 },
          { label: 'new key, tracing (no SDK)', ours: 'newTracing', floor: 'newOff' },
          { label: 'new key, metrics + tracing (no SDK)', ours: 'newBoth', floor: 'newOff', goal: 0.95 },
          { label: 'duplicate, metrics', ours: 'dupMetrics', floor: 'dupOff', goal: 0.95 },
          { label: 'duplicate, metrics + tracing (no SDK)', ours: 'dupBoth', floor: 'dupOff', goal: 0.95 },
        ],
        1,
      ),
    )
    failed += print(
      await measureRows(
        'RedisStore (one local Redis), no OpenTelemetry SDK',
        {
          newOff: redisNew(redis, `${prefix}a:`, watches.off),
          newBoth: redisNew(redis, `${prefix}b:`, watches.both),
          dupOff: await redisDuplicate(redis, `${prefix}c:`, watches.off),
          dupBoth: await redisDuplicate(redis, `${prefix}d:`, watches.both),
        },
        [
          { label: 'new key, metrics + tracing (no SDK)', ours: 'newBoth', floor: 'newOff', goal: 0.95 },
          { label: 'duplicate, metrics + tracing (no SDK)', ours: 'dupBoth', floor: 'dupOff', goal: 0.95 },
        ],
        1,
      ),
    )

    // Phases 2 and 3: an SDK registered; spans sampled out, then every span recorded and ended
    // (exported to an exporter that drops them: the cost of making spans, not of shipping them).
    for (const [name, sampler] of [
      ['an SDK that samples nothing (AlwaysOff)', new AlwaysOffSampler()],
      ['an SDK that records every span (AlwaysOn, exporter dropping them)', new AlwaysOnSampler()],
    ] as const) {
      const provider = new BasicTracerProvider({
        sampler,
        spanProcessors: [
          new SimpleSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} }),
        ],
      })
      trace.setGlobalTracerProvider(provider)
      try {
        print(
          await measureRows(
            `MemoryStore, ${name}`,
            { newOff: memoryNew(watches.off), newTracing: memoryNew(watches.tracing) },
            [{ label: 'new key, tracing', ours: 'newTracing', floor: 'newOff' }],
            1,
          ),
        )
        print(
          await measureRows(
            `RedisStore, ${name}`,
            {
              newOff: redisNew(redis, `${prefix}e:`, watches.off),
              newTracing: redisNew(redis, `${prefix}f:`, watches.tracing),
            },
            [{ label: 'new key, tracing', ours: 'newTracing', floor: 'newOff' }],
            1,
          ),
        )
      } finally {
        trace.disable()
        await provider.shutdown()
      }
    }
  } finally {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
    redis.disconnect()
    metrics.close()
    tracing.close()
  }
  console.log(`\ntotal ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
  if (failed > 0 && args.has('--strict')) process.exitCode = 1
}

await main()
