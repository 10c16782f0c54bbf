// Consumer throughput per broker: the same consumer without Idem (ack after a no-op handler), the
// same with a record per message in Redis written by hand (the floor, and the fenced floor: with
// fingerprint, owner token and fenced completion; RabbitMQ, NATS and Redis Streams), beside Idem on
// a RedisStore (one claim per message, and batched claims where the broker hands out batches) and
// on a SqliteStore, all on the same local broker in one run.
//
//   npx tsx bench/consumers.ts                       full run
//   npx tsx bench/consumers.ts --quick               smoke run for CI (figures indicative only)
//   npx tsx bench/consumers.ts --broker amqp,nats    only some brokers
//   add --strict to exit 1 when the goal fails
//
// Goal: with batching on Redis, at least 70% of the raw consumer's throughput. The floors' own share
// of it says what a record per message in Redis leaves to any consumer on this machine. Each
// broker's module (bench/consumers/<broker>.ts) measures its variants; this file runs them and reports.

import os from 'node:os'
import { benchAmqp } from './consumers/amqp.js'
import { benchKafka } from './consumers/kafka.js'
import { benchMqtt } from './consumers/mqtt.js'
import { benchNats } from './consumers/nats.js'
import { benchRedisStreams } from './consumers/redis-streams.js'
import { machineLine } from './lib/machine.js'

interface Row {
  adapter: string
  variant:
    | 'raw'
    | 'floor-redis'
    | 'fenced-floor-redis'
    | 'idem-redis'
    | 'idem-redis-batch'
    | 'idem-sqlite'
    | 'idem-pg-transaction'
  messagesPerSecond: number
}

const BROKERS: Record<string, (opts: { messages: number; quick: boolean }) => Promise<Row[]>> = {
  amqp: benchAmqp,
  nats: benchNats,
  'redis-streams': benchRedisStreams,
  mqtt: benchMqtt,
  kafka: benchKafka,
}
const GOAL = 0.7

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const strict = argv.includes('--strict')
const brokerArg = argv.find((_arg, i) => argv[i - 1] === '--broker')
for (const [i, arg] of argv.entries()) {
  const known = arg === '--quick' || arg === '--strict' || arg === '--broker' || argv[i - 1] === '--broker'
  if (!known) {
    console.error(`unknown argument ${arg}; usage: tsx bench/consumers.ts [--quick] [--strict] [--broker a,b]`)
    process.exit(2)
  }
}
const selected = brokerArg === undefined ? Object.keys(BROKERS) : brokerArg.split(',')
for (const name of selected) {
  if (!(name in BROKERS)) {
    console.error(`unknown broker ${name}; one of ${Object.keys(BROKERS).join(', ')}`)
    process.exit(2)
  }
}
const messages = quick ? 500 : 20_000

console.log(machineLine())
console.log(
  `load average at start: ${os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
)
console.log(`method: ${messages} messages per variant on the local brokers; see bench/consumers/<broker>.ts`)
console.log('')

const header = ['broker', 'variant', 'msg/s', 'vs raw', 'vs floor', 'vs fenced', 'goal']
const lines: string[][] = []
/** Per broker, what its floors say of the goal, printed under the table. */
const verdicts: string[] = []
let failed = false
for (const name of selected) {
  const bench = BROKERS[name] as (opts: { messages: number; quick: boolean }) => Promise<Row[]>
  let rows: Row[]
  try {
    rows = await bench({ messages, quick })
  } catch (error) {
    console.error(`${name}: ${(error as Error)?.stack ?? error}`)
    failed = true
    continue
  }
  const raw = rows.find((r) => r.variant === 'raw')?.messagesPerSecond
  // The raw consumer with a record per message in Redis written by hand, and the same with
  // fingerprint, owner token and fenced completion (bench/consumers/shared.ts).
  const floor = rows.find((r) => r.variant === 'floor-redis')?.messagesPerSecond
  const fenced = rows.find((r) => r.variant === 'fenced-floor-redis')?.messagesPerSecond
  const share = (row: Row, of: number | undefined, shown: boolean) =>
    of === undefined || of === 0 || !shown ? '-' : (row.messagesPerSecond / of).toFixed(3)
  for (const row of rows) {
    const ratio = raw === undefined || raw === 0 ? undefined : row.messagesPerSecond / raw
    const onRedis = row.variant.startsWith('idem-redis')
    let goal = '-'
    if (row.variant === 'idem-redis-batch' && ratio !== undefined) {
      goal = `>= ${GOAL.toFixed(2)} ${ratio >= GOAL ? 'PASS' : 'FAIL'}`
      if (ratio < GOAL) failed = true
    }
    if (row.variant === 'floor-redis' && ratio !== undefined) {
      verdicts.push(
        ratio < GOAL
          ? `${row.adapter}: the hand-written floor itself reaches ${ratio.toFixed(3)} of raw, under ${GOAL.toFixed(2)}: even written by hand, a record per message in this Redis stays under the goal here`
          : `${row.adapter}: the hand-written floor reaches ${ratio.toFixed(3)} of raw: the goal is within what a record per message in this Redis leaves`,
      )
    }
    lines.push([
      row.adapter,
      row.variant,
      Math.round(row.messagesPerSecond).toLocaleString('en-US'),
      ratio === undefined ? '-' : ratio.toFixed(3),
      share(row, floor, onRedis || row.variant === 'fenced-floor-redis'),
      share(row, fenced, onRedis),
      goal,
    ])
  }
}
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
const format = (cells: string[]) =>
  cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ')
console.log(format(header))
for (const line of lines) console.log(format(line))
if (verdicts.length > 0) console.log(`\n${verdicts.join('\n')}`)
if (quick) console.log('\n(--quick: a smoke run; its figures are not findings)')
if (strict && failed) process.exitCode = 1
