// HTTP benchmark: requests/s and p99 of one Express and one Fastify endpoint, bare, with Idem
// (RedisStore) and, on Express, with the peers on the same Redis (express-idempotency with its
// Redis adapter, @node-idempotency/core with its Redis adapter). A new Idempotency-Key per request.
// Each server is a child process on 127.0.0.1; autocannon drives them from this process, in
// interleaved rounds. See bench/docs/http.md.
//
//   npx tsx bench/http.ts            full run (about 2 minutes)
//   npx tsx bench/http.ts --quick    smoke run for CI (figures indicative only)
//   add --strict to exit 1 when a goal fails

import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { machineLine } from './lib/machine.js'

const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const VARIANTS = [
  'express bare',
  'express + idem',
  'express + express-idempotency',
  'express + @node-idempotency/core',
  'fastify bare',
  'fastify + idem',
] as const
type Variant = (typeof VARIANTS)[number]
const BARE: Record<Variant, Variant> = {
  'express bare': 'express bare',
  'express + idem': 'express bare',
  'express + express-idempotency': 'express bare',
  'express + @node-idempotency/core': 'express bare',
  'fastify bare': 'fastify bare',
  'fastify + idem': 'fastify bare',
}
const PAYLOAD = JSON.stringify({ amount: 4200, currency: 'EUR', customer: 'cus_42' })

// ---------------------------------------------------------------- the servers (child processes)

async function serve(variant: Variant, prefix: string): Promise<void> {
  const require = createRequire(import.meta.url)
  let executed = 0
  const order = (body: { amount: number }) => ({ id: `ord_${++executed}`, status: 'paid', amount: body.amount })
  const closers: Array<() => Promise<unknown>> = []
  let server: Server

  if (variant.startsWith('fastify')) {
    const { default: Fastify } = await import('fastify')
    const app = Fastify()
    if (variant === 'fastify + idem') {
      const { fastifyIdempotency } = await import('../src/http/fastify/index.js')
      await app.register(fastifyIdempotency, { store: await redisStore(prefix, closers), required: true })
    }
    app.post<{ Body: { amount: number } }>('/orders', async (request, reply) =>
      reply.code(201).send(order(request.body)),
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server
  } else {
    const { default: express } = await import('express')
    const app = express()
    app.use(express.json())
    let isHit = (_req: unknown) => false
    if (variant === 'express + idem') {
      const { expressIdempotency } = await import('../src/http/express/index.js')
      app.use(expressIdempotency({ store: await redisStore(prefix, closers), required: true }))
    } else if (variant === 'express + express-idempotency') {
      // Its README: the middleware, a Redis data adapter, and isHit() checked in the handler.
      const { idempotency, getSharedIdempotencyService } = await import('express-idempotency')
      const RedisAdapter = require('express-idempotency-redis-adapter').default
      const adapter = new RedisAdapter({ connectionConfig: { url: REDIS_URL } })
      await adapter.connect()
      closers.push(() => adapter.disconnect())
      app.use(idempotency({ dataAdapter: adapter }))
      isHit = (req) => getSharedIdempotencyService().isHit(req as never)
    } else if (variant === 'express + @node-idempotency/core') {
      // Its README: onRequest before the handler (a replay or undefined), onResponse with the
      // response before it is sent; errors carry a code that maps to a status, as its Express
      // package does.
      const { Idempotency } = await import('@node-idempotency/core')
      const { RedisStorageAdapter } = await import('@node-idempotency/storage-adapter-redis')
      const adapter = new RedisStorageAdapter({ url: REDIS_URL })
      await adapter.connect()
      closers.push(() => adapter.disconnect())
      const idem = new Idempotency(adapter, { enforceIdempotency: true, cacheKeyPrefix: prefix })
      app.use(async (req, res, next) => {
        const request = { method: req.method, headers: req.headers, body: req.body, path: req.path }
        try {
          const stored = await idem.onRequest<unknown, unknown>(request)
          if (stored !== undefined) {
            res.status(Number(stored.additional?.status ?? 200)).json(stored.body)
            return
          }
        } catch (error) {
          const code = (error as { code?: string }).code
          res.status(code === 'CONFLICT' ? 409 : code === 'FINGERPRINT_MISMATCH' ? 422 : 400).end()
          return
        }
        const json = res.json.bind(res)
        res.json = (body: unknown) => {
          void idem.onResponse(request, { body, additional: { status: res.statusCode } }).finally(() => json(body))
          return res
        }
        next()
      })
    }
    app.post('/orders', (req, res) => {
      if (isHit(req)) return
      res.status(201).json(order(req.body))
    })
    const { createServer } = await import('node:http')
    server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  }
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`)
  process.once('SIGTERM', () => {
    server.close()
    void Promise.allSettled(closers.map((close) => close())).finally(() => process.exit(0))
  })
}

async function redisStore(prefix: string, closers: Array<() => Promise<unknown>>) {
  const { Redis } = await import('ioredis')
  const { RedisStore } = await import('../src/stores/redis/index.js')
  // Auto-pipelining sends the commands of one tick in one write, as node-redis (the peers'
  // client) does by default; without it each command is its own write(2). Measured both ways:
  // no difference in req/s or CPU here (bench/docs/http.md).
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableAutoPipelining: true })
  closers.push(() => client.quit())
  return new RedisStore({ client, prefix: `${prefix}:` })
}

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
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--serve', variant, prefix], {
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

async function post(url: string, key: string): Promise<{ status: number; body: string }> {
  const headers = { 'content-type': 'application/json', 'idempotency-key': key }
  const response = await fetch(url, { method: 'POST', headers, body: PAYLOAD })
  return { status: response.status, body: await response.text() }
}

/** Before measuring: a new key executes; for the idempotent variants, its retry is a replay. */
async function verify(child: Child, runId: string): Promise<void> {
  const key = `${runId}-verify-${randomUUID()}`
  const first = await post(child.url, key)
  const second = await post(child.url, key)
  if (first.status !== 201) throw new Error(`${child.variant}: a new key answered ${first.status} ${first.body}`)
  const idempotent = child.variant !== BARE[child.variant]
  if (idempotent && second.body !== first.body) throw new Error(`${child.variant}: the retry was not a replay`)
  if (!idempotent && second.body === first.body) throw new Error(`${child.variant}: the bare endpoint replayed`)
}

async function measure(cannon: Cannon, child: Child, seconds: number, connections: number, tag: string) {
  let n = 0
  const result = await cannon({
    url: child.url,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    body: PAYLOAD,
    requests: [
      {
        setupRequest: (request: { headers: Record<string, string> }) => ({
          ...request,
          headers: { ...request.headers, 'idempotency-key': `${tag}-${n++}` },
        }),
      },
    ],
  })
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) console.warn(`  ${child.variant}: ${failed} failed requests in a round`)
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const settings = argv.includes('--quick') ? QUICK : FULL
  const strict = argv.includes('--strict')
  const require = createRequire(import.meta.url)
  const cannon = require('autocannon') as Cannon
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version
  const runId = `bh${process.pid}x${Date.now().toString(36)}`

  console.log(machineLine())
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(
    `versions: express ${version('express')}, fastify ${version('fastify')}, express-idempotency ${version('express-idempotency')}, express-idempotency-redis-adapter ${version('express-idempotency-redis-adapter')}, @node-idempotency/core ${version('@node-idempotency/core')}, autocannon ${version('autocannon')}`,
  )
  console.log(
    `method: POST /orders with a JSON body, a new key per request; one server per variant (child process), autocannon ${settings.connections} connections; warm-up ${settings.warmupS} s, then ${settings.rounds} round(s) x ${settings.roundS} s per variant, order reversed every round; medians`,
  )

  const children = await Promise.all(VARIANTS.map((variant, i) => start(variant, `${runId}v${i}`)))
  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    for (const child of children) await verify(child, runId)
    for (const child of children) await measure(cannon, child, settings.warmupS, settings.connections, `${runId}-w`)
    const samples = new Map<Variant, Samples>(VARIANTS.map((v) => [v, { rps: [], p99: [], serverUs: [], redisUs: [] }]))
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? children : [...children].reverse()
      for (const child of order) {
        const [server0, redis0] = [processCpuS(child.process.pid), await redisCpuS(redis)]
        const { rps, p99, total } = await measure(
          cannon,
          child,
          settings.roundS,
          settings.connections,
          `${runId}-r${round}`,
        )
        const [server1, redis1] = [processCpuS(child.process.pid), await redisCpuS(redis)]
        const sample = samples.get(child.variant) as Samples
        sample.rps.push(rps)
        sample.p99.push(p99)
        sample.serverUs.push(((server1 - server0) * 1e6) / total)
        sample.redisUs.push(((redis1 - redis0) * 1e6) / total)
      }
    }
    report(samples, strict)
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

function report(samples: Map<Variant, Samples>, strict: boolean): void {
  const rps = (v: Variant) => median(samples.get(v)?.rps ?? [])
  const cpu = (v: Variant, field: 'serverUs' | 'redisUs') => median(samples.get(v)?.[field] ?? []).toFixed(0)
  const goals: string[] = []
  console.log(
    `\n${'variant'.padEnd(36)}${'req/s'.padStart(10)}${'p99 ms'.padStart(9)}${'vs bare'.padStart(9)}${'server µs/req'.padStart(15)}${'redis µs/req'.padStart(14)}   goal`,
  )
  for (const variant of VARIANTS) {
    const ratio = rps(variant) / rps(BARE[variant])
    let goal = '-'
    if (variant.endsWith('+ idem')) {
      const peers = VARIANTS.filter((v) => v.startsWith('express +') && !v.endsWith('idem'))
      const beats = variant.startsWith('express') ? peers.every((p) => rps(variant) > rps(p)) : true
      goal = `>= 0.85 of bare ${ratio >= 0.85 ? 'PASS' : 'FAIL'}`
      if (variant.startsWith('express')) goal += `; beats every peer ${beats ? 'PASS' : 'FAIL'}`
      goals.push(goal)
    }
    const p99 = median(samples.get(variant)?.p99 ?? [])
    console.log(
      `${variant.padEnd(36)}${Math.round(rps(variant)).toLocaleString('en-US').padStart(10)}${p99.toFixed(0).padStart(9)}${ratio.toFixed(2).padStart(9)}${cpu(variant, 'serverUs').padStart(15)}${cpu(variant, 'redisUs').padStart(14)}   ${goal}`,
    )
  }
  for (const peer of ['express + express-idempotency', 'express + @node-idempotency/core'] as const) {
    console.log(`idem / ${peer.slice(10)}: ${(rps('express + idem') / rps(peer)).toFixed(2)}x`)
  }
  if (strict && goals.some((g) => g.includes('FAIL'))) process.exitCode = 1
}

/** Delete every key this run left in Redis (ours and the peers' alike carry the run id). */
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

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant, process.argv[4] as string)
else await main()
