// A consumer process for the Kafka crash and rebalance tests: one member of the group, whose Idem
// records live in Redis (RedisStore) and whose effects are counted in a Redis hash, so that what
// every process did survives a SIGKILL and is visible to the test. It can hang (before the effect)
// in the handler of one key (--hang-on) or of every message after the first N (--hang-after), so
// the parent can kill it mid-batch. SIGTERM closes it gracefully (it leaves the group).
//
// Under `${prefix}:` in Redis: effects (hash key → count), calls:<name> (keys whose handler started),
// settled:<name> ("outcome key"), hung (set of keys hanging), ready (set of names consuming),
// violations (commits that went out for a partition the member no longer owned).

import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { consumeKafka } from '../../../../src/brokers/kafka/consume-kafka.js'
import type { KafkaCommitOffset } from '../../../../src/brokers/kafka/kafka-driver.js'
import { groupMember, KAFKA, producerClient, redisIdem } from './kafka.test-helper.js'

const { values } = parseArgs({
  options: {
    topic: { type: 'string' },
    group: { type: 'string' },
    prefix: { type: 'string' },
    name: { type: 'string' },
    broker: { type: 'string', default: KAFKA },
    ordering: { type: 'string', default: 'partition' },
    concurrency: { type: 'string', default: '8' },
    'work-ms': { type: 'string', default: '0' },
    'hang-on': { type: 'string' },
    'hang-after': { type: 'string' },
    lease: { type: 'string', default: '1s' },
    'session-timeout': { type: 'string', default: '6000' },
  },
})
const { topic, group, prefix, name, broker } = values
if (topic === undefined || group === undefined || prefix === undefined || name === undefined) {
  throw new Error('usage: kafka-consumer.worker.ts --topic T --group G --prefix P --name N [options]')
}
const workMs = Number(values['work-ms'])
const hangAfter = values['hang-after'] === undefined ? Number.POSITIVE_INFINITY : Number(values['hang-after'])
const hangOn = values['hang-on']

const redis = new Redis({ host: '127.0.0.1', port: 6379 })
// A dead member keeps its partitions until its session expires: short sessions make tests quick.
const sessionTimeout = Number(values['session-timeout'])
const client = groupMember(group, broker, { sessionTimeout, rebalanceTimeout: Math.max(sessionTimeout, 10_000) })
const producer = producerClient(broker, `idem-test-${name}`)

// Every commit that goes out is checked: if the client rejoined the group while it was in flight
// (it retries a refused commit under the new generation), each partition in it must still be ours.
const commit = client.commit.bind(client) as (options: { offsets: KafkaCommitOffset[] }) => Promise<void>
Object.assign(client, {
  commit: async (options: { offsets: KafkaCommitOffset[] }) => {
    const generation = client.generationId
    await commit(options)
    if (client.generationId === generation) return
    for (const { topic: t, partition, offset } of options.offsets) {
      const owned = client.assignments?.some((a) => a.topic === t && a.partitions.includes(partition)) ?? false
      if (!owned) {
        await redis.rpush(
          `${prefix}:violations`,
          `${name} committed ${t}/${partition}@${offset} in generation ${client.generationId} (sent in ${generation}) without owning it`,
        )
      }
    }
  },
})

// The group's events, on stderr: the test prints them when it fails.
const t0 = Date.now()
const log = (...args: unknown[]) => console.error(`[${name} +${Date.now() - t0}ms]`, ...args)
client.on('consumer:group:join', (p: { generationId?: number; assignments?: unknown }) =>
  log('join', p.generationId, JSON.stringify(p.assignments)),
)
client.on('consumer:group:rebalance', () => log('rebalance'))
client.on('consumer:group:leave', () => log('leave'))
client.on('consumer:heartbeat:error', (p: { error?: Error }) => log('heartbeat error', p.error?.message))

const forever = () => new Promise<never>(() => {})
let calls = 0
const handle = await consumeKafka<{ n: number }>({
  client,
  producer,
  topics: [topic],
  ordering: values.ordering as 'partition' | 'key',
  idem: redisIdem(redis, prefix, values.lease),
  concurrency: Number(values.concurrency),
  backoff: () => 50,
  on: {
    settled: (result) => {
      void redis.rpush(`${prefix}:settled:${name}`, `${result.outcome} ${result.key}`)
    },
  },
  onError: (error) => log('onError', error instanceof Error ? error.message : error),
  handler: async (_payload, ctx) => {
    const call = ++calls // this call's number, before anything else can run
    await redis.rpush(`${prefix}:calls:${name}`, ctx.key)
    if (ctx.key === hangOn || call > hangAfter) {
      await redis.sadd(`${prefix}:hung`, ctx.key)
      return forever() // until SIGKILL
    }
    if (workMs > 0) await sleep(workMs)
    await redis.hincrby(`${prefix}:effects`, ctx.key, 1)
  },
})
await redis.sadd(`${prefix}:ready`, name)

process.once('SIGTERM', () => {
  void (async () => {
    await handle.close()
    await client.close()
    await producer.close()
    redis.disconnect()
    process.exit(0)
  })().catch((error) => {
    console.error(`${name}: closing failed`, error)
    process.exit(1)
  })
})
