// Soak run: steady traffic with duplicates, for minutes, through the HTTP middleware (node:http
// server, undici keep-alive client, real sockets) and a Redis Streams consumer, on RedisStore and
// PostgresStore at once, with a short record ttl; samples memory, event-loop delay, open handles
// and each store's size every few seconds, and fails (exit 1) on unbounded growth, a store larger
// than ttl x rate allows, a duplicate that ran its handler twice, or any error.
//
//   npm run soak -- --minutes 30          the full run (default 30 minutes)
//   npm run soak -- --minutes 1           the CI run (about 65 s wall clock)
//   npm run soak -- --minutes 1 --leak    self-test: a leaking handler, the verdict must FAIL
//   npm run soak -- --minutes 1 --no-sweep  self-test: PostgreSQL unswept, the verdict must FAIL
//   npm run soak -- --help                every option
//
// Everything lives under names of this run (a Redis key prefix and stream names, a PostgreSQL
// schema) and is removed at the end. The method and the figures: docs/reliability.md, section Soak.

import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { machineLine } from '../bench/lib/machine.js'
import { parseArgs, type SoakArgs, USAGE } from './args.js'
import { startConsumerTraffic } from './consumer-traffic.js'
import { startHttpTraffic, type Traffic } from './http-traffic.js'
import { Leak } from './leak.js'
import { CreationRate, Errors, Ledger } from './ledger.js'
import { handlesLine, samplesTable, trafficLines, verdictLines } from './report.js'
import { type Sample, Sampler } from './sampler.js'
import { openPostgresStore, openRedisStore, type SoakStore, type StoreName } from './stores.js'
import { DEFAULT_MIX, seededRandom } from './traffic-shape.js'
import { verdict } from './verdict.js'

/** A ledger forgets a key this long after it was sent: the duplicate window plus time in flight. */
const LEDGER_RETAIN_MS = DEFAULT_MIX.windowMs + 15_000
/** How long the traffic sent in the last instant may take to be answered once the pacers stop. */
const DRAIN_TIMEOUT_MS = 10_000

/** One line on stderr about every tenth of the run, so that a long run shows it is alive. */
function progress(sample: Sample, durationS: number): void {
  if (process.env.SOAK_DEBUG === undefined && Math.floor((sample.t * 10) / durationS) === progress.tenth) return
  progress.tenth = Math.floor((sample.t * 10) / durationS)
  const mib = (n: number) => (n / 2 ** 20).toFixed(1)
  const sizes = Object.entries(sample.storeSize).map(([name, n]) => `${name} ${n}`)
  process.stderr.write(
    `  ${sample.t.toFixed(0)} s: ${sample.opsPerS.toFixed(0)} ops/s, heap ${mib(sample.heapUsed)} MiB, ` +
      `${sample.handlesTotal} handles, ${sizes.join(', ')} records, ${sample.errors} errors\n`,
  )
}
progress.tenth = -1

async function soak(args: SoakArgs): Promise<boolean> {
  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`
  const durationS = args.minutes * 60
  const windowFromS = Math.max(args.warmupS, durationS / 2)
  const errors = new Errors()
  const leak = args.leak.size > 0 ? new Leak(args.leak) : undefined
  const random = seededRandom(args.seed)
  process.on('unhandledRejection', (error) => errors.add('unhandled rejection', error))

  console.log(machineLine())
  console.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, nproc ${os.availableParallelism()}`,
  )
  console.log(
    `soak ${args.minutes} min on ${args.stores.join(' + ')}: ${args.rate} ops/s per source, ` +
      `${(DEFAULT_MIX.concurrent * 100).toFixed(0)}% concurrent + ${(DEFAULT_MIX.sequential * 100).toFixed(0)}% later duplicates, ` +
      `ttl ${args.ttlS} s, consumer lease ${args.leaseS} s, sweep every ${args.sweepEveryS} s${args.sweep ? '' : ' (OFF: self-test)'}, ` +
      `sample every ${args.sampleEveryS} s, growth window from ${windowFromS.toFixed(0)} s, seed ${args.seed}` +
      (leak === undefined ? '' : `, LEAK ${[...args.leak].join('+')} (self-test)`),
  )

  const stores: SoakStore[] = []
  const traffic: Traffic[] = []
  const ledgers: Ledger[] = []
  const rates = new Map<StoreName, CreationRate>()
  const samples: Sample[] = []
  let sampler: Sampler | undefined
  const startedWall = Date.now()
  let setupS = 0
  let drainedS = 0
  let closedS = 0
  try {
    for (const name of args.stores) {
      const common = { runId, ttlS: args.ttlS, errors }
      stores.push(
        name === 'redis'
          ? await openRedisStore(common)
          : await openPostgresStore({ ...common, sweepEveryS: args.sweepEveryS, sweep: args.sweep }),
      )
    }
    const startedAt = performance.now()
    for (const store of stores) {
      const rate = new CreationRate(Math.ceil(args.ttlS + store.expiryLagS + 10))
      rates.set(store.name, rate)
      const http = new Ledger(`http ${store.name}`, LEDGER_RETAIN_MS, () => rate.add())
      const consumer = new Ledger(`consumer ${store.name}`, LEDGER_RETAIN_MS, () => rate.add())
      ledgers.push(http, consumer)
      const common = { store, errors, rate: args.rate, mix: DEFAULT_MIX, random, runId }
      traffic.push(await startHttpTraffic({ ...common, ledger: http, leak }))
      traffic.push(await startConsumerTraffic({ ...common, ledger: consumer, leaseS: args.leaseS }))
    }
    setupS = (Date.now() - startedWall) / 1000
    sampler = new Sampler({ stores, rates, ledgers, errors, ttlS: args.ttlS, startedAt })
    const everyMs = args.sampleEveryS * 1000
    for (let n = 1; n * everyMs <= durationS * 1000 + 1; ) {
      await sleep(Math.max(0, startedAt + n * everyMs - performance.now()))
      const sample = await sampler.take()
      // A sample that took longer than the interval skips the times it overran: the run keeps its length.
      n = Math.max(n + 1, Math.ceil((performance.now() - startedAt) / everyMs))
      samples.push(sample)
      progress(sample, durationS)
    }
  } catch (error) {
    errors.add('soak', error)
  } finally {
    const stoppedAt = Date.now()
    for (const t of traffic) t.stop()
    await Promise.all(traffic.map((t) => t.drain(DRAIN_TIMEOUT_MS)))
    drainedS = (Date.now() - stoppedAt) / 1000
    sampler?.stop()
    leak?.stop()
    await Promise.all(traffic.map((t) => t.close().catch((error) => errors.add('close', error))))
    await Promise.all(stores.map((s) => s.close().catch((error) => errors.add(`close ${s.name}`, error))))
    closedS = (Date.now() - stoppedAt) / 1000 - drainedS
  }

  const totalS = samples[samples.length - 1]?.t ?? 1
  const opsPerS = (samples[samples.length - 1]?.done ?? 0) / totalS
  const checks = verdict({ samples, windowFromS, ledgers, errors, stores: args.stores, opsPerS })
  const pass = checks.every((c) => c.pass)
  // The whole process, module loading included: what the CI step waits for.
  const wallS = process.uptime()
  console.log()
  console.log(samplesTable(samples, args.stores, durationS))
  console.log()
  console.log(
    `handles at ${samples.find((s) => s.t >= windowFromS)?.t.toFixed(0)} s: ${handlesLine(samples.find((s) => s.t >= windowFromS))}`,
  )
  console.log(`handles at the end: ${handlesLine(samples[samples.length - 1])}`)
  const slowest = Math.max(0, ...samples.map((s) => s.sampleMs))
  console.log(
    `sampling: ${samples.length} samples, the slowest took ${slowest.toFixed(0)} ms (forced GC and store counts)`,
  )
  console.log(`traffic (${opsPerS.toFixed(0)} ops/s answered or settled over the run):`)
  for (const line of trafficLines(ledgers)) console.log(line)
  console.log()
  console.log(
    `verdict: ${pass ? 'PASS' : 'FAIL'} (${wallS.toFixed(0)} s wall clock: setup ${setupS.toFixed(1)} s, ` +
      `drain ${drainedS.toFixed(1)} s, clean-up ${closedS.toFixed(1)} s; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')})`,
  )
  for (const line of verdictLines(checks)) console.log(line)
  return pass
}

let args: SoakArgs
try {
  args = parseArgs(process.argv.slice(2))
} catch (error) {
  if ((error as Error).message === USAGE) {
    console.log(USAGE)
    process.exit(0)
  }
  console.error(`${(error as Error).message}\n${USAGE}`)
  process.exit(2)
}
// Exit explicitly: the --leak self-test leaves timers behind on purpose.
soak(args).then(
  (pass) => process.exit(pass ? 0 : 1),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
