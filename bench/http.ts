// HTTP benchmark: requests/s and p99 of one Express, one Fastify and one NestJS (on its Express
// platform) endpoint, bare, by hand over
// Redis (the floor: the same two round trips, no Idem code), with Idem (RedisStore) and, on
// Express, with the peers on the same Redis (express-idempotency with its Redis adapter,
// @node-idempotency/core with its Redis adapter). A new Idempotency-Key per request, then the
// same key again (replays) for the floor and Idem. Each server is a child process on 127.0.0.1
// (bench/http/servers.ts); autocannon drives them from this process, in interleaved rounds. See
// bench/docs/http.md.
//
//   npx tsx bench/http.ts            full run (about 4 minutes)
//   npx tsx bench/http.ts --quick    smoke run for CI (figures indicative only)
//   add --strict to exit 1 when a goal fails
//   add --only express (or fastify, or nest) to measure that framework's rows alone (while profiling)
//   IDEM_BENCH_CPU_PROF=<dir>: the servers write V8 CPU profiles there (node --cpu-prof)

import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { NEST_VARIANTS, type NestVariant, serveNest } from './http/nest-servers.js'
import { VARIANTS as FRAMEWORK_VARIANTS, type Variant as FrameworkVariant, REDIS_URL, serve } from './http/servers.js'
import { machineLine } from './lib/machine.js'

/** Every server measured: the frameworks' (bench/http/servers.ts) and NestJS's (bench/http/nest-servers.ts). */
const VARIANTS = [...FRAMEWORK_VARIANTS, ...NEST_VARIANTS] as const
type Variant = FrameworkVariant | NestVariant
const isNest = (variant: string): variant is NestVariant => (NEST_VARIANTS as readonly string[]).includes(variant)

/** What each variant is compared with: the bare endpoint, and for the idempotent ones the floor. */
const BARE: Record<Variant, Variant> = {
  'express bare': 'express bare',
  'express floor': 'express bare',
  'express fenced floor': 'express bare',
  'express + idem': 'express bare',
  'express + express-idempotency': 'express bare',
  'express + @node-idempotency/core': 'express bare',
  'fastify bare': 'fastify bare',
  'fastify floor': 'fastify bare',
  'fastify fenced floor': 'fastify bare',
  'fastify + idem': 'fastify bare',
  'nest bare': 'nest bare',
  'nest floor': 'nest bare',
  'nest + idem': 'nest bare',
}
const FLOOR: Partial<Record<Variant, Variant>> = {
  'express + idem': 'express floor',
  'fastify + idem': 'fastify floor',
  'nest + idem': 'nest floor',
}
/**
 * The floor with, at their least, the guarantees Idem must keep and the floor does without
 * (fingerprint, owner token, fenced completion; bench/http/floor.ts): what it reaches of the floor
 * is what those guarantees cost alone, and what Idem reaches of it is Idem's own overhead.
 */
const FENCED: Partial<Record<Variant, Variant>> = {
  'express + idem': 'express fenced floor',
  'fastify + idem': 'fastify fenced floor',
}
const PEERS: readonly Variant[] = ['express + express-idempotency', 'express + @node-idempotency/core']
/** Goal: Idem at this fraction of its floor's req/s at least. */
const FLOOR_GOAL = 0.9
const PAYLOAD = JSON.stringify({ amount: 4200, currency: 'EUR', customer: 'cus_42' })

/** A measured row: a server, sent a new key per request or one key again and again (replays). */
interface Case {
  name: string
  variant: Variant
  replay: boolean
}
const REPLAYED: readonly Variant[] = [
  'express floor',
  'express + idem',
  'fastify floor',
  'fastify + idem',
  'nest floor',
  'nest + idem',
]
const CASES: readonly Case[] = [
  ...VARIANTS.map((variant) => ({ name: variant, variant, replay: false })),
  ...REPLAYED.map((variant) => ({ name: `${variant}, replay`, variant, replay: true })),
]
const caseOf = (variant: Variant, replay: boolean) =>
  CASES.find((c) => c.variant === variant && c.replay === replay) as Case

// ---------------------------------------------------------------- the driver

interface Settings {
  connections: number
  warmupS: number
  roundS: number
  rounds: number
}
const FULL: Settings = { connections: 32, warmupS: 2, roundS: 5, rounds: 3 }
const QUICK: Settings = { connections: 16, warmupS: 0.5, roundS: 1, rounds: 1 }

interface CannonResult {
  requests: { average: number; total: number }
  latency: { p99: number }
  non2xx: number
  errors: number
  timeouts: number
}
type Cannon = (options: Record<string, unknown>) => Promise<CannonResult>

interface Child {
  variant: Variant
  process: ChildProcess
  url: string
}

function start(variant: Variant, prefix: string): Promise<Child> {
  const script = fileURLToPath(import.meta.url)
  const profileDir = process.env.IDEM_BENCH_CPU_PROF
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', script, '--serve', variant, prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)))
    child.stdout?.on('data', (data: Buffer) => {
      const port = /READY (\d+)/.exec(data.toString())?.[1]
      if (port !== undefined) resolve({ variant, process: child, url: `http://127.0.0.1:${port}/orders` })
    })
  })
}

async function post(url: string, key: string | undefined): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key !== undefined) headers['idempotency-key'] = key
  const response = await fetch(url, { method: 'POST', headers, body: PAYLOAD })
  return { status: response.status, body: await response.text() }
}

/**
 * Before measuring: a new key executes; for the idempotent variants its retry is a replay, and for
 * the floor and Idem a request without a key is refused with 400.
 */
async function verify(child: Child, runId: string): Promise<void> {
  const key = `${runId}-verify-${randomUUID()}`
  const first = await post(child.url, key)
  const second = await post(child.url, key)
  if (first.status !== 201) throw new Error(`${child.variant}: a new key answered ${first.status} ${first.body}`)
  const idempotent = child.variant !== BARE[child.variant]
  if (idempotent && second.body !== first.body) throw new Error(`${child.variant}: the retry was not a replay`)
  if (!idempotent && second.body === first.body) throw new Error(`${child.variant}: the bare endpoint replayed`)
  if (REPLAYED.includes(child.variant) || Object.values(FENCED).includes(child.variant)) {
    const keyless = await post(child.url, undefined)
    if (keyless.status !== 400) throw new Error(`${child.variant}: a request without a key answered ${keyless.status}`)
  }
}

/** The key every replay of `child` sends: stored once before the replays are measured. */
const replayKey = (runId: string, child: Child) => `${runId}-replay-${VARIANTS.indexOf(child.variant)}`

async function measure(cannon: Cannon, child: Child, c: Case, seconds: number, connections: number, tag: string) {
  let n = 0
  const fixed = { 'content-type': 'application/json', 'idempotency-key': tag }
  const result = await cannon({
    url: child.url,
    method: 'POST',
    connections,
    duration: seconds,
    headers: c.replay ? fixed : { 'content-type': 'application/json' },
    body: PAYLOAD,
    requests: c.replay
      ? undefined
      : [
          {
            setupRequest: (request: { headers: Record<string, string> }) => ({
              ...request,
              headers: { ...request.headers, 'idempotency-key': `${tag}-${n++}` },
            }),
          },
        ],
  })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) console.warn(`  ${c.name}: ${failed} failed requests in a round`)
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total }
}

/** CPU seconds a process has used (Linux /proc), to show where each request's time goes. */
function processCpuS(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

/** CPU seconds the Redis server has used (shared with anything else using it meanwhile). */
async function redisCpuS(client: { info(section: string): Promise<string> }): Promise<number> {
  const info = await client.info('cpu')
  const get = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1])
  return get('used_cpu_user') + get('used_cpu_sys')
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

const loadLine = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const settings = argv.includes('--quick') ? QUICK : FULL
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined
  const variants = VARIANTS.filter((v) => only === undefined || v.startsWith(`${only} `))
  const cases = CASES.filter((c) => variants.includes(c.variant))
  if (variants.length === 0) throw new Error(`--only ${only}: no variant starts with it (express, fastify, nest)`)
  const strict = argv.includes('--strict')
  const require = createRequire(import.meta.url)
  const cannon = require('autocannon') as Cannon
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version
  const runId = `bh${process.pid}x${Date.now().toString(36)}`

  console.log(machineLine())
  console.log(`load average at start: ${loadLine()}`)
  console.log(
    `versions: express ${version('express')}, fastify ${version('fastify')}, @nestjs/core ${version('@nestjs/core')} (@nestjs/platform-express ${version('@nestjs/platform-express')}), ioredis ${version('ioredis')}, express-idempotency ${version('express-idempotency')}, express-idempotency-redis-adapter ${version('express-idempotency-redis-adapter')}, @node-idempotency/core ${version('@node-idempotency/core')}, autocannon ${version('autocannon')}`,
  )
  console.log(
    `method: POST /orders with a JSON body, a new key per request (replays: one stored key again); one server per variant (child process), autocannon ${settings.connections} connections; warm-up ${settings.warmupS} s, then ${settings.rounds} round(s) x ${settings.roundS} s per row, order reversed every round; medians, ratios are medians of per-round ratios`,
  )

  const children = await Promise.all(variants.map((variant) => start(variant, `${runId}v${VARIANTS.indexOf(variant)}`)))
  const childOf = (variant: Variant) => children.find((c) => c.variant === variant) as Child
  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    for (const child of children) await verify(child, runId)
    for (const variant of REPLAYED.filter((v) => variants.includes(v))) {
      const child = childOf(variant)
      const stored = await post(child.url, replayKey(runId, child))
      if (stored.status !== 201) throw new Error(`${variant}: storing the replayed key answered ${stored.status}`)
    }
    const tagOf = (c: Case, phase: string) => (c.replay ? replayKey(runId, childOf(c.variant)) : `${runId}-${phase}`)
    for (const c of cases) {
      await measure(cannon, childOf(c.variant), c, settings.warmupS, settings.connections, tagOf(c, 'w'))
    }
    const samples = new Map<string, Samples>(
      cases.map((c) => [c.name, { rps: [], p99: [], serverUs: [], redisUs: [] }]),
    )
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? cases : [...cases].reverse()
      for (const c of order) {
        const child = childOf(c.variant)
        const [server0, redis0] = [processCpuS(child.process.pid), await redisCpuS(redis)]
        const tag = tagOf(c, `r${round}`)
        const { rps, p99, total } = await measure(cannon, child, c, settings.roundS, settings.connections, tag)
        const [server1, redis1] = [processCpuS(child.process.pid), await redisCpuS(redis)]
        const sample = samples.get(c.name) as Samples
        sample.rps.push(rps)
        sample.p99.push(p99)
        sample.serverUs.push(((server1 - server0) * 1e6) / total)
        sample.redisUs.push(((redis1 - redis0) * 1e6) / total)
      }
    }
    console.log(`load average at end: ${loadLine()}`)
    report(cases, samples, strict)
  } finally {
    for (const child of children) child.process.kill('SIGTERM')
    await redis.quit()
    await cleanup(runId)
  }
}

interface Samples {
  rps: number[]
  p99: number[]
  /** CPU of the server process per request, µs. */
  serverUs: number[]
  /** CPU of the Redis server per request, µs (includes anything else using that Redis meanwhile). */
  redisUs: number[]
}

function report(cases: readonly Case[], samples: Map<string, Samples>, strict: boolean): void {
  const of = (c: Case) => samples.get(c.name) as Samples
  // Ratios round by round: both sides of a ratio were measured within one round, minutes apart at most.
  const ratio = (a: Case, b: Case) => median(of(a).rps.map((rps, i) => rps / (of(b).rps[i] as number)))
  const fixed = (values: number[], digits: number) => median(values).toFixed(digits)
  const goals: string[] = []
  console.log(
    `\n${'row'.padEnd(40)}${'req/s'.padStart(9)}${'p99 ms'.padStart(8)}${'vs bare'.padStart(9)}${'vs floor'.padStart(10)}${'server µs/req'.padStart(15)}${'redis µs/req'.padStart(14)}   goal`,
  )
  for (const c of cases) {
    const s = of(c)
    const floor = FLOOR[c.variant]
    const vsFloor = floor === undefined ? undefined : ratio(c, caseOf(floor, c.replay))
    let goal = '-'
    if (vsFloor !== undefined && !c.replay) {
      goal = `>= ${FLOOR_GOAL.toFixed(2)} of floor ${vsFloor >= FLOOR_GOAL ? 'PASS' : 'FAIL'}`
      goals.push(goal)
    }
    const vsBare = c.replay ? '' : ratio(c, caseOf(BARE[c.variant], false)).toFixed(2)
    console.log(
      `${c.name.padEnd(40)}${Math.round(median(s.rps)).toLocaleString('en-US').padStart(9)}${fixed(s.p99, 0).padStart(8)}${vsBare.padStart(9)}${(vsFloor?.toFixed(2) ?? '').padStart(10)}${fixed(s.serverUs, 0).padStart(15)}${fixed(s.redisUs, 0).padStart(14)}   ${goal}`,
    )
  }
  for (const [idemVariant, fenced] of Object.entries(FENCED) as Array<[Variant, Variant]>) {
    const idemCase = caseOf(idemVariant, false)
    const fencedCase = caseOf(fenced, false)
    const floor = FLOOR[idemVariant] as Variant
    if (!cases.includes(idemCase) || !cases.includes(fencedCase)) continue
    console.log(
      `${fenced}: ${ratio(fencedCase, caseOf(floor, false)).toFixed(2)} of the floor (what fingerprint, token and fencing cost alone); ${idemVariant}: ${ratio(idemCase, fencedCase).toFixed(2)} of the fenced floor`,
    )
  }
  const idem = caseOf('express + idem', false)
  for (const peer of PEERS.filter(() => cases.includes(idem))) {
    const r = ratio(idem, caseOf(peer, false))
    const goal = `> 1.00 ${r > 1 ? 'PASS' : 'FAIL'}`
    goals.push(goal)
    console.log(`idem / ${peer.slice('express + '.length)}: ${r.toFixed(2)}x   goal ${goal}`)
  }
  if (strict && goals.some((g) => g.includes('FAIL'))) process.exitCode = 1
}

/** Delete every key this run left in Redis (ours, the floor's and the peers' alike carry the run id). */
async function cleanup(runId: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `*${runId}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await client.del(...keys)
  } while (cursor !== '0')
  await client.quit()
  console.log(`cleanup: deleted ${deleted} Redis keys of this run`)
}

if (process.argv[2] === '--serve') {
  const variant = process.argv[3] as Variant
  if (isNest(variant)) await serveNest(variant, process.argv[4] as string)
  else await serve(variant, process.argv[4] as string)
} else await main()
