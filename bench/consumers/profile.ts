// Where a batched consumer's time goes: fills a queue or stream (untimed), then drains it with the
// adapter batched on a RedisStore, with the settings of bench/consumers/<broker>.ts, while V8's CPU
// profiler runs over the inspector around the drain only. Prints each drain's rate and CPU per
// message, the share of the drains' wall time by where the running code lives, the Redis commands
// sent and the socket writes made during the drains; the profiles stay in a directory for DevTools.
//
//   npx tsx bench/consumers/profile.ts --broker redis-streams [--drains 3] [--messages 20000]
//
// The counters wrap ioredis' sendCommand and net.Socket's write: they add a little work per call,
// so the rates printed here are a little under the benchmark's.

import { mkdtempSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import net from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import amqp from 'amqplib'
import { Redis } from 'ioredis'
import { AckPolicy, connect, nanos, StorageType } from 'nats'
import { consumeAmqp, DEFAULT_DELAY_TIERS } from '../../src/brokers/amqp/index.js'
import { consumeJetStream } from '../../src/brokers/nats/index.js'
import { consumeRedisStream } from '../../src/brokers/redis-streams/index.js'
import { Idempotency } from '../../src/core/idempotency.js'
import { RedisStore } from '../../src/stores/redis/redis-store.js'
import { machineLine } from '../lib/machine.js'
import { type CpuProfile, classify, shares } from './profile-shares.js'
import { deleteKeys } from './shared.js'

const argv = process.argv.slice(2)
const arg = (name: string, fallback: string) => argv[argv.indexOf(name) + 1] ?? fallback
const broker = argv.includes('--broker') ? arg('--broker', '') : 'redis-streams'
const drains = Number(argv.includes('--drains') ? arg('--drains', '3') : 3)
const n = Number(argv.includes('--messages') ? arg('--messages', '20000') : 20_000)
if (!['redis-streams', 'amqp', 'nats'].includes(broker)) {
  console.error(
    'usage: tsx bench/consumers/profile.ts --broker redis-streams|amqp|nats [--drains 3] [--messages 20000]',
  )
  process.exit(2)
}
const REDIS_URL = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379'
const AMQP_URL = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const NATS_URL = process.env.IDEM_NATS_URL ?? '127.0.0.1:4222'

/** Counting only while a drain runs. */
let counting = false
const commands = new Map<string, number>()
const writes = new Map<string, number>()
const count = (map: Map<string, number>, key: string) => {
  if (counting) map.set(key, (map.get(key) ?? 0) + 1)
}
type SendCommand = (this: Redis, command: { name: string }, stream?: unknown) => unknown
const sendCommand = Redis.prototype.sendCommand as unknown as SendCommand
;(Redis.prototype as unknown as { sendCommand: SendCommand }).sendCommand = function (command, stream) {
  count(commands, command.name)
  return sendCommand.call(this, command, stream)
}
type Write = (this: net.Socket, ...args: unknown[]) => boolean
const write = net.Socket.prototype.write as unknown as Write
;(net.Socket.prototype as unknown as { write: Write }).write = function (...args) {
  count(writes, String(this.remotePort))
  return write.apply(this, args)
}

const session = new Session()
session.connect()
await session.post('Profiler.enable')
const dir = mkdtempSync(join(tmpdir(), `idem-profile-${broker}-`))
const redis = new Redis(REDIS_URL, { enableAutoPipelining: true })
const run = `idem_profile_${process.pid}`
const profiles: CpuProfile[] = []

/** Fill (untimed), then drain once while profiling, and clean up. */
async function once(round: number): Promise<void> {
  const name = `${run}_${round}`
  let settled = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const on = {
    settled: (result: { outcome: string; reason?: string }) => {
      if (result.outcome !== 'executed') throw new Error(`${result.outcome} ${result.reason ?? ''}`)
      if (++settled === n) done()
    },
  }
  const common = { handler: () => undefined, on }
  let start: () => Promise<{ close(): Promise<void> }>
  let cleanup: () => Promise<void>
  if (broker === 'redis-streams') {
    // As bench/consumers/redis-streams.ts: the store on the consumer's client, no auto-pipelining.
    const client = new Redis(REDIS_URL)
    await client.call('XGROUP', 'CREATE', name, 'bench', '0', 'MKSTREAM')
    for (let i = 0; i < n; i += 1000) {
      const pipeline = client.pipeline()
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        pipeline.xadd(name, '*', 'id', `${name}-${j}`, 'payload', JSON.stringify({ orderId: j, amountCents: 4200 }))
      }
      await pipeline.exec()
    }
    const idem = new Idempotency({ store: new RedisStore({ client, prefix: `${name}:idem:` }), scope: 'bench' })
    start = () =>
      consumeRedisStream({
        client,
        stream: name,
        group: 'bench',
        count: 64,
        batch: true,
        concurrency: 256,
        idem,
        ...common,
      })
    cleanup = async () => {
      await client.del(name)
      client.disconnect()
    }
  } else if (broker === 'nats') {
    const nc = await connect({ servers: NATS_URL })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.add({ name, subjects: [`${name}.in`], storage: StorageType.Memory })
    await jsm.consumers.add(name, {
      durable_name: 'bench',
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
      max_deliver: -1,
      max_ack_pending: 512,
    })
    const js = nc.jetstream()
    const encoder = new TextEncoder()
    for (let i = 0; i < n; i += 1000) {
      const published = []
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        const body = encoder.encode(JSON.stringify({ orderId: j, amountCents: 4200 }))
        published.push(js.publish(`${name}.in`, body, { msgID: `${name}-${j}` }))
      }
      await Promise.all(published)
    }
    const idem = new Idempotency({ store: new RedisStore({ client: redis, prefix: `${name}:idem:` }), scope: 'bench' })
    start = () =>
      consumeJetStream({
        client: nc,
        stream: name,
        durable: 'bench',
        deadLetterSubject: false,
        batch: true,
        maxBatch: 64,
        concurrency: 256,
        idem,
        ...common,
      })
    cleanup = async () => {
      await jsm.streams.delete(name)
      await nc.close()
    }
  } else {
    const connection = await amqp.connect(AMQP_URL)
    const channel = await connection.createConfirmChannel()
    await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    for (let i = 0; i < n; i++) {
      const body = Buffer.from(JSON.stringify({ orderId: i, amountCents: 4200 }))
      channel.sendToQueue(name, body, { persistent: true, messageId: `${name}-${i}`, contentType: 'application/json' })
      if (i % 1000 === 999) await channel.waitForConfirms()
    }
    await channel.waitForConfirms()
    const idem = new Idempotency({ store: new RedisStore({ client: redis, prefix: `${name}:idem:` }), scope: 'bench' })
    start = () =>
      consumeAmqp({
        client: connection,
        queue: name,
        prefetch: 256,
        batch: { size: 64, maxWait: 5 },
        concurrency: 128,
        idem,
        ...common,
      })
    cleanup = async () => {
      const queues = [name, `${name}.idem.dlq`, ...DEFAULT_DELAY_TIERS.map((ms) => `${name}.idem.delay.${ms}`)]
      for (const queue of queues) await channel.deleteQueue(queue)
      await channel.deleteExchange(`${name}.idem.dlx`)
      await connection.close()
    }
  }
  counting = true
  await session.post('Profiler.start')
  const startedAt = performance.now()
  const cpu = process.cpuUsage()
  const handle = await start()
  await finished
  const elapsed = performance.now() - startedAt
  const used = process.cpuUsage(cpu)
  const { profile } = await session.post('Profiler.stop')
  counting = false
  profiles.push(profile as CpuProfile)
  writeFileSync(join(dir, `drain-${round}.cpuprofile`), JSON.stringify(profile))
  const cpuMicros = (used.user + used.system) / n
  console.log(`drain ${round + 1}: ${Math.round(n / (elapsed / 1000))} msg/s, ${cpuMicros.toFixed(1)} µs CPU/msg`)
  await handle.close()
  await cleanup()
}

console.log(machineLine())
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
console.log(`${broker}, batched on Redis: ${drains} drain(s) of ${n} messages, profiled`)
try {
  for (let round = 0; round < drains; round++) await once(round)
} finally {
  // In slices: one DEL of every key of a long run overflows the stack that spreads its arguments.
  await deleteKeys(redis, `${run}*`)
  redis.disconnect()
}
console.log("\nshare of the drains' wall time, by where the running code lives:")
for (const [where, share] of shares(profiles, classify))
  console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${where}`)
const perDrain = (map: Map<string, number>) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([key, value]) => `${key} ${Math.round(value / drains)}`)
    .join(', ')
console.log(`\nRedis commands per drain: ${perDrain(commands)}`)
console.log(`socket writes per drain, by remote port: ${perDrain(writes)}`)
console.log(`profiles (open in Chrome DevTools): ${dir}`)
