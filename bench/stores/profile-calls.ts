// Where the client's CPU goes per call at concurrency 64 on the shared Redis: a raw `GET` (the
// duplicates' floor), Idem's duplicate with the payload fingerprinted and with the fingerprint
// given, and the fingerprint alone (no I/O). V8's CPU profiler runs over the inspector around each
// case; the samples are summed by where the running code lives and divided by the calls made. It
// ends with the ceiling the fingerprint alone leaves a duplicate: the floor's CPU per call against
// the floor's plus the fingerprint's, as if the rest of Idem cost nothing.
//
//   npx tsx bench/stores/profile-calls.ts [--seconds 3] [--client ioredis|node-redis]
//
// With `--client node-redis` the floor's GET and Idem's RedisStore go through node-redis
// (`@redis/client`), whose GET costs less client CPU per call than ioredis': the ceiling for the
// goal of Idem on node-redis.
//
// Client CPU only (process.cpuUsage, and the profile of this process); Redis runs on the same
// two cores, so at concurrency 64 the client's CPU per call is what bounds the throughput ratio.

import { Session } from 'node:inspector/promises'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { createClient } from '@redis/client'
import { Redis } from 'ioredis'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { type CpuProfile, shares } from '../consumers/profile-shares.js'
import { PAYLOAD, produce } from '../lib/fixtures.js'
import { machineLine } from '../lib/machine.js'

const argv = process.argv.slice(2)
const seconds = Number(argv.includes('--seconds') ? argv[argv.indexOf('--seconds') + 1] : 3)
const clientName = argv.includes('--client') ? argv[argv.indexOf('--client') + 1] : 'ioredis'
if (!(seconds > 0) || (clientName !== 'ioredis' && clientName !== 'node-redis')) {
  console.error('usage: tsx bench/stores/profile-calls.ts [--seconds 3] [--client ioredis|node-redis]')
  process.exit(2)
}
const CONCURRENCY = 64
const KEYS = 1000

/** Where a sampled function lives, for this page: the fingerprint apart from the rest of the core. */
function place(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle (waiting for Redis)'
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === '(program)') return 'V8 (program)'
  if (url.endsWith('/src/core/fingerprint.ts') || (functionName === 'hash' && url === 'node:internal/crypto/hash')) {
    return 'fingerprint (canonical JSON, SHA-256)'
  }
  if (url.includes('/src/stores/') || url.includes('/src/drivers/') || url.includes('/src/contract/')) {
    return 'Idem: store, link, contract'
  }
  if (url.includes('/src/')) return 'Idem: core (run, pipeline, codec)'
  if (url.includes('/ioredis/') || url.includes('/redis-parser/') || url.includes('/@redis/')) {
    return `the Redis client (${clientName})`
  }
  if (url.includes('/bench/')) return 'the benchmark loop'
  return 'Node internals and native (sockets, promises, buffers)'
}

interface Measured {
  name: string
  calls: number
  wallMs: number
  cpuUs: number
  profile: CpuProfile
}

async function profiled(session: Session, name: string, op: () => unknown, concurrent: boolean): Promise<Measured> {
  const batch: unknown[] = new Array(CONCURRENCY)
  const runFor = async (ms: number) => {
    let calls = 0
    const until = performance.now() + ms
    while (performance.now() < until) {
      if (concurrent) {
        for (let j = 0; j < CONCURRENCY; j++) batch[j] = op()
        await Promise.all(batch)
      } else {
        for (let j = 0; j < CONCURRENCY; j++) op()
      }
      calls += CONCURRENCY
    }
    return calls
  }
  await runFor(500)
  await session.post('Profiler.start')
  const cpu = process.cpuUsage()
  const startedAt = performance.now()
  const calls = await runFor(seconds * 1000)
  const wallMs = performance.now() - startedAt
  const used = process.cpuUsage(cpu)
  const { profile } = await session.post('Profiler.stop')
  return { name, calls, wallMs, cpuUs: used.user + used.system, profile: profile as unknown as CpuProfile }
}

const url = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `idem-bench-profile-${process.pid}:`
/** ioredis sets up and cleans up; the cases run on `clientName`. */
const client = new Redis(url)
const nodeRedis = clientName === 'node-redis' ? await createClient({ url }).connect() : undefined
const idem = new Idempotency({ store: new RedisStore({ client: nodeRedis ?? client, prefix }) })
const get = nodeRedis === undefined ? (key: string) => client.get(key) : (key: string) => nodeRedis.get(key)
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: 100 })
try {
  console.log(machineLine())
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  )
  console.log(
    `method: ${seconds} s per case after 0.5 s of warm-up, ${CONCURRENCY} calls at a time, V8 sampling every 100 µs`,
  )
  const keys = Array.from({ length: KEYS }, (_, i) => `dup-${i}`)
  const fingerprint = fingerprintOf(PAYLOAD)
  for (const key of keys) {
    await idem.run({ key, payload: PAYLOAD }, produce)
    await client.set(`${prefix}raw:${key}`, JSON.stringify({ v: await produce() }))
  }
  let i = 0
  const next = () => keys[i++ % KEYS] as string
  const cases: Measured[] = [
    await profiled(session, `GET (${clientName}), the floor`, () => get(`${prefix}raw:${next()}`), true),
    await profiled(
      session,
      'Idem duplicate, payload fingerprinted',
      () => idem.run({ key: next(), payload: PAYLOAD }, produce),
      true,
    ),
    await profiled(
      session,
      'Idem duplicate, fingerprint given',
      () => idem.run({ key: next(), fingerprint }, produce),
      true,
    ),
    // A fresh object each call, as a request's parsed body is.
    await profiled(session, 'fingerprint alone (no I/O)', () => fingerprintOf({ ...PAYLOAD }), false),
  ]
  for (const c of cases) {
    const perCall = c.wallMs / c.calls
    console.log(
      `\n${c.name}: ${Math.round(c.calls / (c.wallMs / 1000)).toLocaleString('en-US')} calls/s, client CPU ${(c.cpuUs / c.calls).toFixed(2)} µs per call`,
    )
    for (const [where, share] of shares([c.profile], place)) {
      if (share >= 0.005) console.log(`  ${(share * perCall * 1000).toFixed(2).padStart(6)} µs  ${where}`)
    }
  }
  const [floor, , , alone] = cases as [Measured, Measured, Measured, Measured]
  const floorCpu = floor.cpuUs / floor.calls
  const fingerprintCpu = alone.cpuUs / alone.calls
  console.log(
    `\nceiling for a duplicate whose payload is fingerprinted, at concurrency 64 where client CPU bounds it: ${floorCpu.toFixed(2)} / (${floorCpu.toFixed(2)} + ${fingerprintCpu.toFixed(2)}) = ${(floorCpu / (floorCpu + fingerprintCpu)).toFixed(2)} of the GET floor, if the rest of Idem cost nothing`,
  )
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  )
} finally {
  session.disconnect()
  await nodeRedis?.close()
  const stale = await client.keys(`${prefix}*`)
  for (let k = 0; k < stale.length; k += 500) await client.del(...stale.slice(k, k + 500))
  client.disconnect()
}
