// Gateway benchmark: requests/s, p99 and CPU per request of one upstream endpoint (POST /orders,
// a small JSON body, 201 with a small JSON order) served directly, through nginx `proxy_pass`
// (1 worker: the fair match for one Node process; and `worker_processes auto` for context), and
// through the idempotency gateway in `off` mode, in `enforce` mode on Redis with a new key per
// request, and in `enforce` mode where every request retries one of a few keys already executed
// (replays). Every server is a process of its own on 127.0.0.1; autocannon drives them from this
// process in interleaved rounds. See bench/docs/gateway.md.
//
//   npx tsx bench/gateway.ts            full run (about 2 minutes)
//   npx tsx bench/gateway.ts --quick    smoke run for CI, about 25 s (figures indicative only)
//   add --strict to exit 1 when a goal fails (or cannot be measured: no gateway yet)

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { missingNginx, NGINX, startNginx } from '../test/support/gateway/nginx.test-helper.js'
import { startUpstream, type Upstream } from '../test/support/gateway/upstream.test-helper.js'
import { urlLineOf } from '../test/support/url-line.test-helper.js'
import { machineLine } from './lib/machine.js'
import { formatTable, opsFmt, ratioText } from './lib/report.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const GATEWAY_ENTRY = join(HERE, '..', 'src', 'gateway', 'index.ts')
const GATEWAY_SERVER = join(HERE, 'gateway', 'gateway-server.ts')
const FLOOR_PROXY = join(HERE, 'gateway', 'floor-proxy.ts')
const PAYLOAD = JSON.stringify({ amount: 4200, currency: 'EUR', customer: 'cus_42' })
/** Keys executed once before the duplicate rounds; every request of those rounds reuses one of them. */
const DUPLICATE_KEYS = 16

const VARIANTS = [
  'direct',
  'nginx, 1 worker',
  'nginx, auto workers',
  'floor off (by hand)',
  'gateway off',
  'floor enforce, new keys (by hand)',
  'gateway enforce, new keys',
  'gateway enforce, duplicates',
] as const
type Variant = (typeof VARIANTS)[number]

interface Settings {
  connections: number
  warmupS: number
  roundS: number
  rounds: number
}
const FULL: Settings = { connections: 32, warmupS: 2, roundS: 5, rounds: 3 }
const QUICK: Settings = { connections: 32, warmupS: 0.5, roundS: 2, rounds: 1 }

interface CannonResult {
  requests: { average: number; total: number }
  latency: { p99: number }
  non2xx: number
  errors: number
  timeouts: number
}
type Cannon = (options: Record<string, unknown>) => Promise<CannonResult>

/** One thing to measure: where requests go, which processes serve them, how keys are chosen. */
interface Target {
  variant: Variant
  /** Base URL (no path). */
  url: string
  /** The proxy's processes whose CPU counts (none for `direct`). */
  pids: () => number[]
  /** The Idempotency-Key of the n-th request of a round tagged `tag`. */
  key: (tag: string, n: number) => string
}

// ---------------------------------------------------------------- processes

interface GatewayChild {
  process: ChildProcess
  url: string
  stop(): Promise<void>
}

/** Gateways this process started, killed at exit so that a failed run leaves none behind. */
const gateways = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of gateways) child.kill('SIGKILL')
})

async function startGateway(
  mode: 'off' | 'enforce',
  upstream: string,
  prefix: string,
  script = GATEWAY_SERVER,
): Promise<GatewayChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, mode, upstream, prefix, REDIS_URL], {
    cwd: join(HERE, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  gateways.add(child)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gateways.delete(child)
      resolve()
    }),
  )
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    process.kill(child.pid, 'SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  const url = await urlLineOf(child, `the gateway (${mode})`, 30_000)
  return { process: child, url, stop }
}

/** Start two servers together; each one that started is in `stops` even when the other failed. */
async function startBoth<A extends { stop(): Promise<void> }, B extends { stop(): Promise<void> }>(
  stops: Array<() => Promise<void>>,
  a: Promise<A>,
  b: Promise<B>,
): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b])
  if (first.status === 'fulfilled') stops.push(() => first.value.stop())
  if (second.status === 'fulfilled') stops.push(() => second.value.stop())
  if (first.status === 'rejected') throw first.reason
  if (second.status === 'rejected') throw second.reason
  return [first.value, second.value]
}

/** Why the gateway rows cannot run yet, or undefined when src/gateway exports createGateway. */
async function gatewayMissing(): Promise<string | undefined> {
  if (!existsSync(GATEWAY_ENTRY)) return 'src/gateway/index.ts does not exist yet'
  try {
    const entry = '../src/gateway/index.js'
    const module = (await import(entry)) as { createGateway?: unknown }
    return typeof module.createGateway === 'function' ? undefined : 'src/gateway/index.ts does not export createGateway'
  } catch (error) {
    return `src/gateway/index.ts does not load: ${(error as Error).message.split('\n')[0]}`
  }
}

/** The pid and its living children (nginx's workers), from /proc. */
function withChildren(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    return [pid, ...(children === '' ? [] : children.split(/\s+/).map(Number))]
  } catch {
    return [pid]
  }
}

/** CPU seconds the processes have used (Linux /proc, user + system). */
function cpuS(pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      total += (Number(fields[11]) + Number(fields[12])) / 100
    } catch {
      return Number.NaN
    }
  }
  return total
}

/** CPU seconds the Redis server has used (shared with anything else using it meanwhile). */
async function redisCpuS(client: { info(section: string): Promise<string> }): Promise<number> {
  const info = await client.info('cpu')
  const get = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1])
  return get('used_cpu_user') + get('used_cpu_sys')
}

// ---------------------------------------------------------------- requests

async function post(url: string, key: string, testKey = key): Promise<{ status: number; body: string }> {
  const headers = { 'content-type': 'application/json', 'idempotency-key': key, 'x-test-key': testKey }
  const response = await fetch(`${url}/orders`, { method: 'POST', headers, body: PAYLOAD })
  return { status: response.status, body: await response.text() }
}

/**
 * Before measuring: a new key answers 201 through every target; a retry of it is a replay (same
 * body, the upstream executed it once) through the enforcing gateway, and a second execution
 * everywhere else.
 */
async function verify(target: Target, upstream: Upstream, runId: string): Promise<void> {
  const key = `${runId}-verify-${randomUUID()}`
  const first = await post(target.url, key)
  const second = await post(target.url, key)
  const executed = (await upstream.executions()).byKey[key] ?? 0
  const name = target.variant
  if (first.status !== 201) throw new Error(`${name}: a new key answered ${first.status} ${first.body.slice(0, 300)}`)
  if (second.status !== 201)
    throw new Error(`${name}: the retry answered ${second.status} ${second.body.slice(0, 300)}`)
  const enforcing = name.includes('enforce')
  if (enforcing && (second.body !== first.body || executed !== 1)) {
    throw new Error(`${name}: the retry was not a replay (upstream executed the key ${executed} times)`)
  }
  if (!enforcing && (second.body === first.body || executed !== 2)) {
    throw new Error(`${name}: the retry was not executed again (upstream executed the key ${executed} times)`)
  }
}

async function measure(cannon: Cannon, target: Target, seconds: number, connections: number, tag: string) {
  let n = 0
  const result = await cannon({
    url: `${target.url}/orders`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    body: PAYLOAD,
    requests: [
      {
        setupRequest: (request: { headers: Record<string, string> }) => ({
          ...request,
          headers: { ...request.headers, 'idempotency-key': target.key(tag, n++) },
        }),
      },
    ],
  })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) console.warn(`  ${target.variant}: ${failed} failed requests in a round`)
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total }
}

/**
 * Wait until the upstream's execution count stops moving: requests a proxy still had in flight
 * when autocannon ended the previous round reach the upstream afterwards, and must not be
 * counted in the next round (nor their CPU). At most 5 s.
 */
async function settle(upstream: Upstream): Promise<void> {
  const deadline = Date.now() + 5000
  let last = (await upstream.executions()).total
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    const now = (await upstream.executions()).total
    if (now === last) return
    last = now
  }
}

const median = (values: readonly number[]) => {
  const sorted = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

interface Samples {
  rps: number[]
  p99: number[]
  /** CPU of the proxy's processes per request, µs (0 for direct). */
  proxyUs: number[]
  /** CPU of the upstream process per request, µs. */
  upstreamUs: number[]
  /** CPU of the Redis server per request, µs (includes anything else using that Redis meanwhile). */
  redisUs: number[]
  /** Upstream executions per request answered (1 when every request reaches it, 0 for replays). */
  executed: number[]
}

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const settings = argv.includes('--quick') ? QUICK : FULL
  const strict = argv.includes('--strict')
  const require = createRequire(import.meta.url)
  const cannon = require('autocannon') as Cannon
  const runId = `bg${process.pid}x${Date.now().toString(36)}`
  const prefix = `idem-bench:${runId}:`

  const nginxProblem = await missingNginx()
  if (nginxProblem !== undefined) throw new Error(nginxProblem)
  // nginx -v writes its version on stderr.
  const nginxVersion = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '')
  const gatewayProblem = await gatewayMissing()

  console.log(machineLine())
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  const autocannonVersion = (require('autocannon/package.json') as { version: string }).version
  console.log(`versions: ${nginxVersion}, autocannon ${autocannonVersion}`)
  console.log(
    `method: POST /orders with a JSON body, a new Idempotency-Key per request (duplicates: one of ${DUPLICATE_KEYS} executed keys); the upstream, nginx and each gateway are processes of their own; autocannon ${settings.connections} connections from this process; warm-up ${settings.warmupS} s, then ${settings.rounds} round(s) x ${settings.roundS} s per variant, order reversed every round; medians`,
  )
  if (gatewayProblem !== undefined) console.log(`gateway rows skipped: ${gatewayProblem}`)

  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const upstream = await startUpstream()
  const stops: Array<() => Promise<void>> = [() => upstream.stop()]
  try {
    const [nginx1, nginxAuto] = await startBoth(
      stops,
      startNginx({ upstreamUrl: upstream.url, workers: 1 }),
      startNginx({ upstreamUrl: upstream.url, workers: 'auto' }),
    )
    const newKey = (tag: string, n: number) => `${tag}-${n}`
    const targets: Target[] = [
      { variant: 'direct', url: upstream.url, pids: () => [], key: newKey },
      { variant: 'nginx, 1 worker', url: nginx1.url, pids: () => withChildren(nginx1.pid), key: newKey },
      { variant: 'nginx, auto workers', url: nginxAuto.url, pids: () => withChildren(nginxAuto.pid), key: newKey },
    ]
    if (gatewayProblem === undefined) {
      const [off, enforce] = await startBoth(
        stops,
        startGateway('off', upstream.url, prefix),
        startGateway('enforce', upstream.url, prefix),
      )
      const offPid = off.process.pid as number
      const enforcePid = enforce.process.pid as number
      const [floorOff, floorEnforce] = await startBoth(
        stops,
        startGateway('off', upstream.url, prefix, FLOOR_PROXY),
        startGateway('enforce', upstream.url, prefix, FLOOR_PROXY),
      )
      const floorOffPid = floorOff.process.pid as number
      const floorEnforcePid = floorEnforce.process.pid as number
      const duplicate = (_tag: string, n: number) => `${runId}-dup-${n % DUPLICATE_KEYS}`
      targets.push(
        { variant: 'floor off (by hand)', url: floorOff.url, pids: () => [floorOffPid], key: newKey },
        { variant: 'gateway off', url: off.url, pids: () => [offPid], key: newKey },
        {
          variant: 'floor enforce, new keys (by hand)',
          url: floorEnforce.url,
          pids: () => [floorEnforcePid],
          key: newKey,
        },
        { variant: 'gateway enforce, new keys', url: enforce.url, pids: () => [enforcePid], key: newKey },
        { variant: 'gateway enforce, duplicates', url: enforce.url, pids: () => [enforcePid], key: duplicate },
      )
      // Execute the duplicate rounds' keys once, so that every request of those rounds is a replay.
      for (let i = 0; i < DUPLICATE_KEYS; i++) {
        const answer = await post(enforce.url, duplicate('', i))
        if (answer.status !== 201) throw new Error(`executing duplicate key ${i} answered ${answer.status}`)
        const replay = await post(enforce.url, duplicate('', i))
        if (replay.body !== answer.body) throw new Error(`duplicate key ${i} was not replayed`)
      }
    }

    for (const target of targets) await verify(target, upstream, runId)
    for (const target of targets) {
      await measure(cannon, target, settings.warmupS, settings.connections, `${runId}-w-${target.variant.length}`)
    }
    const samples = new Map<Variant, Samples>(
      targets.map((t) => [t.variant, { rps: [], p99: [], proxyUs: [], upstreamUs: [], redisUs: [], executed: [] }]),
    )
    for (let round = 0; round < settings.rounds; round++) {
      process.stderr.write(`  round ${round + 1}/${settings.rounds}\n`)
      const order = round % 2 === 0 ? targets : [...targets].reverse()
      for (const target of order) {
        const pids = target.pids()
        await settle(upstream)
        const before = {
          proxy: cpuS(pids),
          upstream: cpuS([upstream.pid]),
          redis: await redisCpuS(redis),
          executions: (await upstream.executions()).total,
        }
        const tag = `${runId}-r${round}-${targets.indexOf(target)}`
        const { rps, p99, total } = await measure(cannon, target, settings.roundS, settings.connections, tag)
        const after = {
          proxy: cpuS(pids),
          upstream: cpuS([upstream.pid]),
          redis: await redisCpuS(redis),
          executions: (await upstream.executions()).total,
        }
        const sample = samples.get(target.variant) as Samples
        const perRequest = (a: number, b: number) => ((b - a) * 1e6) / total
        sample.rps.push(rps)
        sample.p99.push(p99)
        sample.proxyUs.push(pids.length === 0 ? 0 : perRequest(before.proxy, after.proxy))
        sample.upstreamUs.push(perRequest(before.upstream, after.upstream))
        sample.redisUs.push(perRequest(before.redis, after.redis))
        sample.executed.push((after.executions - before.executions) / total)
      }
    }
    report(samples, strict, gatewayProblem)
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.warn(`stopping: ${error}`))
    await redis.quit()
    await cleanup(runId)
  }
}

function report(samples: Map<Variant, Samples>, strict: boolean, gatewayProblem: string | undefined): void {
  const get = (v: Variant, field: keyof Samples) => samples.get(v)?.[field] ?? []
  const rps = (v: Variant) => median(get(v, 'rps'))
  /** Median of the per-round ratios a / b (both measured in the same round). */
  const ratio = (a: Variant, b: Variant) => {
    const top = get(a, 'rps')
    const bottom = get(b, 'rps')
    return median(top.map((value, i) => value / (bottom[i] as number)))
  }
  const us = (v: Variant, field: 'proxyUs' | 'upstreamUs' | 'redisUs') => median(get(v, field)).toFixed(0)
  const lines = VARIANTS.filter((v) => samples.has(v)).map((v) => [
    v,
    opsFmt.format(rps(v)),
    median(get(v, 'p99')).toFixed(0),
    ratioText(ratio(v, 'direct')),
    v === 'direct' ? '-' : us(v, 'proxyUs'),
    us(v, 'upstreamUs'),
    us(v, 'redisUs'),
    median(get(v, 'executed')).toFixed(2),
  ])
  console.log()
  console.log(
    formatTable(
      ['variant', 'req/s', 'p99 ms', 'vs direct', 'proxy µs/req', 'upstream µs/req', 'redis µs/req', 'executed/req'],
      lines,
    ),
  )
  console.log(`nginx auto workers / nginx 1 worker: ${ratioText(ratio('nginx, auto workers', 'nginx, 1 worker'))}x`)

  const goals: string[] = []
  if (gatewayProblem !== undefined) {
    goals.push('gateway off / nginx (1 worker) >= 0.80: NOT MEASURED (no gateway)')
    goals.push('gateway enforce / gateway off >= 0.85: NOT MEASURED (no gateway)')
  } else {
    const offVsNginx = ratio('gateway off', 'nginx, 1 worker')
    const enforceVsOff = ratio('gateway enforce, new keys', 'gateway off')
    const duplicatesVsOff = ratio('gateway enforce, duplicates', 'gateway off')
    goals.push(`gateway off / nginx (1 worker): ${ratioText(offVsNginx)}   goal >= 0.80 ${pass(offVsNginx >= 0.8)}`)
    goals.push(
      `gateway enforce (new keys) / gateway off: ${ratioText(enforceVsOff)}   goal >= 0.85 ${pass(enforceVsOff >= 0.85)}`,
    )
    goals.push(`gateway enforce (duplicates) / gateway off: ${ratioText(duplicatesVsOff)}   (no goal)`)
    const offVsFloor = ratio('gateway off', 'floor off (by hand)')
    const enforceVsFloor = ratio('gateway enforce, new keys', 'floor enforce, new keys (by hand)')
    goals.push(`gateway off / floor off (the same proxying by hand): ${ratioText(offVsFloor)}   (no goal)`)
    goals.push(`gateway enforce / floor enforce (SET NX + SET by hand): ${ratioText(enforceVsFloor)}   (no goal)`)
    const replayed = median(get('gateway enforce, duplicates', 'executed'))
    if (replayed > 0.001) goals.push(`duplicates reached the upstream (${replayed.toFixed(3)} per request) FAIL`)
  }
  for (const goal of goals) console.log(goal)
  if (strict && goals.some((g) => g.includes('FAIL') || g.includes('NOT MEASURED'))) process.exitCode = 1
}

const pass = (ok: boolean) => (ok ? 'PASS' : 'FAIL')

/** Delete every Redis key this run wrote (the gateways' prefix carries the run id). */
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

await main()
