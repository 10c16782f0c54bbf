// Three consumer processes in one group, joining and leaving while the topic is under load, on
// the real broker (127.0.0.1:9092): each rebalance moves partitions between members with work in
// flight, yet every effect happens once, nothing is lost, and no member commits for a partition
// it no longer owns. The group's committed offsets, sampled all along, never go backwards and end
// at the topic's end offsets. Idem's records and the effects live in Redis, shared by the processes.

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
  type WorkerOptions,
  WorkerProcess,
  WorkerRecords,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import { kafkaProducer } from './kafka-producer.js'

const PARTITIONS = 6

const redisUp = await requireService('Redis', SERVICES.Redis.port)
if ((await requireService('Kafka', SERVICES.Kafka.port)) && redisUp) {
  describe('three Kafka consumer processes in one group, joining and leaving under load (127.0.0.1:9092)', () => {
    const prefix = unique('idem-kafka-rebalance')
    let redis: Redis
    let producer: Producer
    const workers: WorkerProcess[] = []

    beforeAll(() => {
      redis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      producer = producerClient()
    })
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.kill()
    })
    afterAll(async () => {
      await producer.close()
      await deleteKeys(redis, prefix)
      redis.disconnect()
    })

    it('runs every message once, commits only what its members own, and never moves an offset back', async () => {
      const topic = unique('idem-rebalance')
      const group = unique('billing')
      const records = new WorkerRecords(redis, prefix)
      await createTopic(topic, PARTITIONS)
      const orders = kafkaProducer({ client: producer, topic, recordKey: (m) => m.id })
      // Load all along: a backlog to start with, then more messages until the last member changed.
      let published = 0
      const publishSome = async (count: number) => {
        const from = published
        published += count
        await orders.publishMany(
          Array.from({ length: count }, (_, i) => ({ id: `order-${from + i}`, payload: { n: from + i } })),
        )
      }
      await publishSome(100)
      let publishing = true
      const publisher = (async () => {
        while (publishing) {
          await publishSome(10)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })()

      // Every reading of the group's committed offsets, one after another (a reading that started
      // later never lands before an earlier one), every 100 ms and whenever the test looks.
      const samples: bigint[][] = []
      let readings: Promise<unknown> = Promise.resolve()
      const observe = (): Promise<bigint[]> => {
        const reading = readings.then(async () => {
          const offsets = await committedOffsets(group, topic, PARTITIONS)
          samples.push(offsets)
          return offsets
        })
        readings = reading.catch(() => {})
        return reading
      }
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          await observe()
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      })()

      const start = (name: string, extra: Partial<WorkerOptions> = {}): WorkerProcess => {
        const w = new WorkerProcess({ topic, group, prefix, name, workMs: 15, concurrency: 8, ...extra })
        workers.push(w)
        return w
      }
      const done = async () => Object.keys(await records.effects()).length
      const stderr = () => workers.map((w) => `${w.name}: ${w.stderr}`).join('\n')
      try {
        const a = start('a')
        await until(
          () => `a to make progress (${stderr()})`,
          async () => (await done()) >= 50,
          30_000,
        )
        const b = start('b')
        await until(
          () => `b to join (${stderr()})`,
          async () => (await records.ready()).includes('b'),
          30_000,
        )
        const c = start('c')
        await until(
          () => `c to join (${stderr()})`,
          async () => (await records.ready()).includes('c'),
          30_000,
        )
        // b leaves (closes and leaves the group) while work is in flight; a fourth member takes its place.
        expect(await b.stop()).toBe(0)
        const d = start('d')
        await until(
          () => `d to join (${stderr()})`,
          async () => (await records.ready()).includes('d'),
          30_000,
        )
        expect(await a.stop()).toBe(0)
        publishing = false
        await publisher
        const end = await endOffsets(topic)
        expect(end.reduce((sum, n) => sum + n, 0n)).toBe(BigInt(published))
        let progress = ''
        await until(
          () => `every effect and the group's commits to reach the end: ${progress}\n${stderr()}`,
          async () => {
            const [effects, commits] = [await done(), await observe()]
            progress = `${effects} of ${published} effects; committed ${commits}, end ${end}`
            return effects === published && String(commits) === String(end)
          },
          30_000,
        )
        expect(await c.stop()).toBe(0)
        expect(await d.stop()).toBe(0)
      } finally {
        publishing = false
        sampling = false
        await sampler
      }
      await observe() // after every member left
      const end = await endOffsets(topic)

      const effects = await records.effects()
      expect(Object.entries(effects).filter(([, n]) => n !== 1)).toEqual([])
      expect(Object.keys(effects)).toHaveLength(published)
      expect(await records.violations()).toEqual([])
      // Per partition, the committed offset only moves forward, and ends at the end of the partition.
      const backwards: string[] = []
      for (let i = 1; i < samples.length; i++) {
        for (let p = 0; p < PARTITIONS; p++) {
          const before = samples[i - 1]?.[p] as bigint
          const after = samples[i]?.[p] as bigint
          if (after < before) backwards.push(`partition ${p}: ${before} → ${after} (sample ${i})`)
        }
      }
      expect(backwards).toEqual([])
      expect(samples.at(-1)).toEqual(end)
      // Every member did part of the work.
      for (const name of ['a', 'b', 'c', 'd']) {
        expect((await records.settled(name)).length, `${name} settled nothing`).toBeGreaterThan(0)
      }
    }, 60_000)
  })
}
