// Consumer processes SIGKILLed mid-batch and started again in the same group, on the real broker
// (127.0.0.1:9092): every effect happens once and nothing is lost. Idem's records live in Redis
// (RedisStore) and effects are counted in a Redis hash, so that both survive the killed process.

import type { Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  committedOffsets,
  createTopic,
  deleteKeys,
  endOffsets,
  producerClient,
  unique,
  until,
  WorkerProcess,
  WorkerRecords,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { kafkaProducer } from './kafka-producer.js'

const redisUp = await requireService('Redis', SERVICES.Redis.port)
if ((await requireService('Kafka', SERVICES.Kafka.port)) && redisUp) {
  describe('Kafka consumer processes killed mid-batch (127.0.0.1:9092, Redis 6379)', () => {
    let redis: Redis
    let producer: Producer
    const workers: WorkerProcess[] = []
    const prefixes: string[] = []
    const worker = (options: ConstructorParameters<typeof WorkerProcess>[0]): WorkerProcess => {
      const started = new WorkerProcess({ sessionTimeout: 3000, ...options })
      workers.push(started)
      return started
    }
    const testPrefix = (): string => {
      const prefix = unique('idem-kafka-crash')
      prefixes.push(prefix)
      return prefix
    }

    beforeAll(() => {
      redis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      producer = producerClient()
    })
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.kill()
      for (const prefix of prefixes.splice(0)) await deleteKeys(redis, prefix)
    })
    afterAll(async () => {
      await producer.close()
      redis.disconnect()
    })

    async function publish(topic: string, count: number, key: (n: number) => string): Promise<void> {
      const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => key((m.payload as { n: number }).n) })
      await orders.publishMany(Array.from({ length: count }, (_, n) => ({ id: `order-${n}`, payload: { n } })))
    }

    it('loses and doubles nothing when a member dies with claimed, running and uncommitted work', async () => {
      const topic = unique('idem-crash')
      const group = unique('billing')
      const prefix = testPrefix()
      const records = new WorkerRecords(redis, prefix)
      const total = 150
      const doneBeforeKill = 60
      await createTopic(topic, 3)
      await publish(topic, total, (n) => `account-${n}`)

      // The first member handles 60 messages, then every handler it starts hangs before its effect;
      // its batches hold claims on messages whose turn has not come, and commits lag behind.
      const doomed = worker({ topic, group, prefix, name: 'doomed', hangAfter: doneBeforeKill, concurrency: 8 })
      const settledExecuted = async () =>
        (await records.settled('doomed')).filter(([outcome]) => outcome === 'executed').length
      let progress = ''
      await until(
        () => `the first member to finish ${doneBeforeKill} messages and hang: ${progress}\n${doomed.stderr}`,
        async () => {
          const [effects, executed, hung] = [
            Object.keys(await records.effects()).length,
            await settledExecuted(),
            await records.hung(),
          ]
          progress = `${effects} effects, ${executed} executed, hung ${hung}`
          return effects === doneBeforeKill && executed === doneBeforeKill && hung.length > 0
        },
        30_000,
      )
      await doomed.kill()
      expect((await doomed.exited).signal).toBe('SIGKILL')
      const doneByDoomed = new Set(Object.keys(await records.effects()))
      const committedAtDeath = await committedOffsets(group, topic, 3)

      const survivor = worker({ topic, group, prefix, name: 'survivor' })
      const end = await endOffsets(topic)
      await until(
        () => `every message to take effect and be committed: ${progress}\n${survivor.stderr}`,
        async () => {
          const [effects, committed] = [
            Object.keys(await records.effects()).length,
            await committedOffsets(group, topic, 3),
          ]
          progress = `${effects} of ${total} effects, committed ${committed}, end ${end}`
          return effects === total && String(committed) === String(end)
        },
        30_000,
      )
      const effects = await records.effects()
      expect(Object.entries(effects).filter(([, n]) => n !== 1)).toEqual([])
      // The survivor ran exactly the messages the dead member had not finished: none twice.
      const ran = await records.calls('survivor')
      expect(ran.filter((key) => doneByDoomed.has(key))).toEqual([])
      expect(new Set(ran).size).toBe(total - doneBeforeKill)
      // It re-read what the dead member finished past its last commit, and replayed it.
      const outcomes = await records.settled('survivor')
      const executed = outcomes.filter(([o]) => o === 'executed').map(([, key]) => key)
      const replayed = outcomes.filter(([o]) => o === 'replayed').map(([, key]) => key)
      expect(executed.sort()).toEqual(ran.sort())
      expect(replayed.every((key) => doneByDoomed.has(key))).toBe(true)
      expect(committedAtDeath.every((offset, p) => offset <= (end[p] as bigint))).toBe(true)
    }, 60_000)

    it('after a partial batch, runs again only the message that was unfinished; the others replay', async () => {
      const topic = unique('idem-partial')
      const group = unique('billing')
      const prefix = testPrefix()
      const records = new WorkerRecords(redis, prefix)
      await createTopic(topic, 1)
      // Ten messages of ten record keys on one partition: with ordering 'key' they run in parallel.
      await publish(topic, 10, (n) => `account-${n}`)

      const doomed = worker({
        topic,
        group,
        prefix,
        name: 'doomed',
        ordering: 'key',
        concurrency: 10,
        hangOn: 'order-3',
      })
      await until(
        () => `nine effects and order-3 hanging (stderr: ${doomed.stderr})`,
        async () =>
          Object.keys(await records.effects()).length === 9 &&
          (await records.settled('doomed')).length === 9 &&
          String(await records.hung()) === 'order-3',
      )
      // 0, 1 and 2 are done and committed; 4 to 9 are done too, but the group may not move past 3.
      await until('the commit of offset 3', async () => String(await committedOffsets(group, topic, 1)) === '3')
      await doomed.kill()
      expect(await committedOffsets(group, topic, 1)).toEqual([3n])

      const survivor = worker({ topic, group, prefix, name: 'survivor', ordering: 'key', concurrency: 10 })
      await until(
        () => `order-3 to take effect and the group to commit 10 (stderr: ${survivor.stderr})`,
        async () =>
          (await records.effects())['order-3'] === 1 && String(await committedOffsets(group, topic, 1)) === '10',
      )
      expect(await records.calls('survivor')).toEqual(['order-3'])
      const outcomes = await records.settled('survivor')
      // order-3 may first be retried while the dead member's claim (its 1 s lease) lapses.
      expect(outcomes.filter(([o]) => o === 'executed')).toEqual([['executed', 'order-3']])
      expect(outcomes.filter(([o]) => o === 'replayed').map(([, key]) => key)).toEqual([
        'order-4',
        'order-5',
        'order-6',
        'order-7',
        'order-8',
        'order-9',
      ])
      expect(outcomes.filter(([o]) => o === 'retried').every(([, key]) => key === 'order-3')).toBe(true)
      const effects = await records.effects()
      expect(Object.keys(effects)).toHaveLength(10)
      expect(Object.values(effects).every((n) => n === 1)).toBe(true)
    }, 60_000)
  })
}
