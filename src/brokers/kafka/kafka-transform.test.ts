// kafkaTransform against a real broker. Outputs are read back with kcat (a client nobody here
// wrote) twice: read_committed, what a downstream reader sees (each input's outputs exactly once),
// and read_uncommitted, which also shows the records of aborted transactions, proving that a test
// which injects a failure did produce copies that the transactions then kept from readers.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Consumer, Producer } from '@platformatic/kafka'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  committedOffsets,
  createTopic,
  groupMember,
  KAFKA,
  producerClient,
  produceWithKcat,
  type RawRecord,
  readWithKcat,
  unique,
  until as untilWithin,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import {
  type CommitFault,
  transactionalClient,
  withCommitFault,
} from '../../../test/support/brokers/kafka/kafka-transform.test-helper.js'
import { kafkaProducer } from './kafka-producer.js'
import { type KafkaTransformHandle, type KafkaTransformOptions, kafkaTransform } from './kafka-transform.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const WORKER = fileURLToPath(new URL('../../../test/support/brokers/kafka/kafka-transform.worker.ts', import.meta.url))

interface Order {
  n: number
}

/** `count` inputs `{ n }` with record keys `k-<n>` (spread over the topic's partitions). */
async function publishInputs(topic: string, count: number): Promise<void> {
  const client = producerClient()
  try {
    const inputs = kafkaProducer({ client, topic, recordKey: (m) => `k-${(m.payload as Order).n}` })
    await inputs.publishMany(Array.from({ length: count }, (_, n) => ({ id: `in-${n}`, payload: { n } })))
  } finally {
    await client.close()
  }
}

const ids = (records: readonly RawRecord[]) => records.map((r) => r.headers['idem-message-id'] as string)
const sum = (offsets: readonly bigint[]) => offsets.reduce((a, b) => a + (b > 0n ? b : 0n), 0n)
const range = (count: number) => Array.from({ length: count }, (_, n) => n)

/** Waits that give up at 40 s (with what they saw), inside this file's 60 s per test. */
const until = (what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs = 40_000) =>
  untilWithin(what, check, timeoutMs)

/** Each id's count: the ids that occur more than once. */
function repeated(list: readonly string[]): string[] {
  const counts = new Map<string, number>()
  for (const id of list) counts.set(id, (counts.get(id) ?? 0) + 1)
  return [...counts].filter(([, count]) => count > 1).map(([id]) => id)
}

if (await requireService('Kafka', SERVICES.Kafka.port)) {
  // Each test creates topics, joins a new group and runs several transactions on the one Kafka that
  // CI shares with two other JVM brokers and the rest of the suite on two cores: 1-3 s when quiet,
  // once past 20 s in CI. The waits below give up at 40 s with the transform's stats, before this.
  describe('kafkaTransform', { timeout: 60_000 }, () => {
    const open: (() => Promise<void>)[] = []
    afterEach(async () => {
      for (const close of open.splice(0).reverse()) await close().catch(() => {})
    })

    /** Topics, a group, clients (closed after the test) and a running transform of inputs to `{ n, square }`. */
    async function rig(
      count: number,
      options: { fault?: (n: number) => CommitFault; partitions?: number } & Partial<KafkaTransformOptions<Order>> = {},
    ) {
      const input = unique('idem-tx-in')
      const output = unique('idem-tx-out')
      const group = unique('idem-tx-group')
      const partitions = options.partitions ?? 2
      await Promise.all([createTopic(input, partitions), createTopic(output, 2)])
      await publishInputs(input, count)
      const consumer: Consumer = groupMember(group)
      const real: Producer = transactionalClient(unique('idem-tx'))
      open.push(
        () => real.close(),
        () => consumer.close(),
      )
      const errors: unknown[] = []
      const transform: KafkaTransformHandle = await kafkaTransform<Order>({
        client: consumer,
        producer: options.fault === undefined ? real : withCommitFault(real, options.fault),
        topics: [input],
        topic: output,
        batchSize: 4,
        transform: ({ n }, message) => [
          { payload: { n, square: n * n }, headers: { 'source-offset': String(message.offset) } },
        ],
        onError: (error) => errors.push(error),
        ...options,
      })
      open.push(() => transform.close())
      const inputsCommitted = async () => sum(await committedOffsets(group, input, partitions))
      return { input, output, group, transform, errors, inputsCommitted, partitions }
    }

    it('writes each input’s outputs once, with stable ids, and commits the group’s offsets with them', async () => {
      const { input, output, transform, errors, inputsCommitted } = await rig(20)
      await until(
        () => `20 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        () => transform.stats.messagesIn === 20,
      )
      await transform.close()
      await expect(transform.done).resolves.toBeUndefined()

      const records = await readWithKcat(output, KAFKA, 'committed')
      expect(records.map((r) => JSON.parse(r.value).n).sort((a, b) => a - b)).toEqual(range(20))
      for (const record of records) {
        const { n, square } = JSON.parse(record.value) as { n: number; square: number }
        expect(square).toBe(n * n)
        // The id is the input's coordinates and the output's index; the key is the input's.
        const id = record.headers['idem-message-id'] as string
        expect(id).toMatch(new RegExp(`^${input}/[01]/\\d+/0$`))
        expect(id.split('/')[2]).toBe(record.headers['source-offset'])
        expect(record.key).toBe(`k-${n}`)
      }
      expect(repeated(ids(records))).toEqual([])
      // Nothing was aborted: read_uncommitted sees the same 20 records.
      expect(await readWithKcat(output, KAFKA, 'uncommitted')).toHaveLength(20)
      expect(await inputsCommitted()).toBe(20n)
      expect(transform.stats).toMatchObject({ messagesIn: 20, messagesOut: 20, aborted: 0, restarts: 0 })
      expect(transform.stats.committed).toBeGreaterThanOrEqual(5)
      expect(errors).toEqual([])
    })

    it('aborts a transaction whose commit fails, reads its inputs again, and writes their outputs once', async () => {
      const { output, transform, errors, inputsCommitted } = await rig(20, {
        fault: (n) => (n === 2 ? 'before' : undefined),
      })
      await until(
        () => `20 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        () => transform.stats.messagesIn === 20,
      )
      await transform.close()

      const committed = await readWithKcat(output, KAFKA, 'committed')
      expect(committed.map((r) => JSON.parse(r.value).n).sort((a, b) => a - b)).toEqual(range(20))
      expect(repeated(ids(committed))).toEqual([])
      // The aborted transaction's outputs are in the log, under the ids their second writing has.
      const uncommitted = await readWithKcat(output, KAFKA, 'uncommitted')
      expect(uncommitted.length).toBeGreaterThan(20)
      const copies = repeated(ids(uncommitted))
      expect(copies.length).toBe(uncommitted.length - 20)
      expect(new Set(ids(committed))).toEqual(new Set(ids(uncommitted)))
      expect(await inputsCommitted()).toBe(20n)
      expect(transform.stats).toMatchObject({ aborted: 1, restarts: 1, messagesOut: 20 })
      expect(String(errors[0])).toMatch(/injected: commit 2 refused/)
    })

    it('after a commit that went through but whose answer was lost, redoes nothing', async () => {
      const { output, transform, errors, inputsCommitted } = await rig(20, {
        fault: (n) => (n === 2 ? 'after' : undefined),
      })
      await until(
        () => `20 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        async () => (await inputsCommitted()) === 20n,
      )
      await transform.close()

      const committed = await readWithKcat(output, KAFKA, 'committed')
      expect(committed.map((r) => JSON.parse(r.value).n).sort((a, b) => a - b)).toEqual(range(20))
      // The offsets read after the failure include the batch that did commit: no copy anywhere.
      expect(await readWithKcat(output, KAFKA, 'uncommitted')).toHaveLength(20)
      expect(transform.stats).toMatchObject({ aborted: 1, restarts: 1 })
      expect(String(errors[0])).toMatch(/injected: commit 2 went through/)
    })

    it('retries a transform that throws, and dead-letters undecodable inputs and those out of attempts', async () => {
      const input = unique('idem-tx-poison')
      const output = unique('idem-tx-poison-out')
      const group = unique('idem-tx-poison-group')
      await Promise.all([createTopic(input), createTopic(output), createTopic(`${input}.dead-letter`)])
      await produceWithKcat(input, ['k1\t{"n":1}', 'k2\tnot json', 'k3\t{"n":3}', 'k4\t{"n":4}', 'k5\t{"n":5}'])
      const consumer = groupMember(group)
      const producer = transactionalClient(unique('idem-tx-poison'))
      open.push(
        () => producer.close(),
        () => consumer.close(),
      )
      let flaky = 0
      const errors: unknown[] = []
      const transform = await kafkaTransform<Order>({
        client: consumer,
        producer,
        topics: [input],
        topic: output,
        maxAttempts: 3,
        backoff: () => 20,
        transform: ({ n }) => {
          if (n === 3 && ++flaky <= 2) throw new Error(`flaky ${flaky}`)
          if (n === 4) throw new Error('always fails for 4')
          return [{ payload: { n } }]
        },
        onError: (error) => errors.push(error),
      })
      open.push(() => transform.close())
      await until(
        () => `5 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        () => transform.stats.messagesIn === 5,
      )
      await transform.close()

      expect((await readWithKcat(output)).map((r) => JSON.parse(r.value).n)).toEqual([1, 3, 5])
      const dead = await readWithKcat(`${input}.dead-letter`)
      expect(dead.map((r) => [r.key, r.value])).toEqual([
        ['k2', 'not json'],
        ['k4', '{"n":4}'],
      ])
      expect(dead[0]?.headers).toMatchObject({
        'idem-dead-letter-reason': expect.stringMatching(/^cannot decode the payload/),
        'idem-original-topic': input,
        'idem-original-offset': '1',
        'idem-delivery-count': '1',
      })
      expect(dead[1]?.headers).toMatchObject({
        'idem-dead-letter-reason': 'the transform failed: always fails for 4',
        'idem-original-offset': '3',
        'idem-key': `${input}/0/3`,
        'idem-delivery-count': '3',
      })
      expect(transform.stats).toMatchObject({ messagesIn: 5, messagesOut: 3, deadLettered: 2, retried: 4, aborted: 0 })
      expect(errors.map(String)).toEqual([
        'Error: flaky 1',
        'Error: flaky 2',
        'Error: always fails for 4',
        'Error: always fails for 4',
      ])
    })

    it('commits the offsets of inputs that have no outputs', async () => {
      const { output, transform, inputsCommitted } = await rig(6, { transform: () => [] })
      await until(
        () => `6 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        () => transform.stats.messagesIn === 6,
      )
      await transform.close()
      expect(await inputsCommitted()).toBe(6n)
      expect(await readWithKcat(output, KAFKA, 'uncommitted')).toEqual([])
      expect(transform.stats).toMatchObject({ messagesOut: 0, aborted: 0 })
    })

    it('reads again from the committed offsets when the group rebalances, and writes each output once', async () => {
      const { input, output, group, transform, inputsCommitted } = await rig(40, {
        batchSize: 2,
        // Slow enough that the rebalances come while it is at work.
        transform: async ({ n }) => {
          await new Promise((resolve) => setTimeout(resolve, 40))
          return [{ payload: { n, square: n * n } }]
        },
      })
      await until(
        () => 'a first transaction',
        () => transform.stats.committed > 0,
      )
      // Another member joins (and takes partitions without reading them), then leaves.
      const intruder = groupMember(group)
      open.push(() => intruder.close())
      const stream = await intruder.consume({
        topics: [input],
        mode: 'committed',
        fallbackMode: 'earliest',
        autocommit: false,
      })
      await until(
        () => 'the transform to see the rebalance',
        () => transform.stats.restarts >= 1,
      )
      await stream.close()
      await intruder.close()
      await until(
        () => `40 inputs committed (stats ${JSON.stringify(transform.stats)})`,
        async () => (await inputsCommitted()) === 40n,
      )
      await transform.close()
      const committed = await readWithKcat(output, KAFKA, 'committed')
      expect(committed.map((r) => JSON.parse(r.value).n).sort((a, b) => a - b)).toEqual(range(40))
      expect(repeated(ids(committed))).toEqual([])
      expect(transform.stats.messagesIn).toBe(40)
      expect(transform.stats.restarts).toBeGreaterThanOrEqual(2)
    })

    it('stops, and says why, once another producer takes its transactionalId over', async () => {
      const input = unique('idem-tx-fenced-in')
      const output = unique('idem-tx-fenced-out')
      const txid = unique('idem-tx-fenced')
      await Promise.all([createTopic(input), createTopic(output)])
      await publishInputs(input, 3)
      const consumer = groupMember(unique('idem-tx-fenced-group'))
      const producer = transactionalClient(txid)
      const successor = transactionalClient(txid)
      open.push(
        () => successor.close(),
        () => producer.close(),
        () => consumer.close(),
      )
      const errors: unknown[] = []
      const transform = await kafkaTransform<Order>({
        client: consumer,
        producer,
        topics: [input],
        topic: output,
        transform: ({ n }) => [{ payload: { n } }],
        onError: (error) => errors.push(error),
      })
      open.push(() => transform.close())
      await until(
        () => '3 inputs committed',
        () => transform.stats.messagesIn === 3,
      )
      // The successor's first transaction fences the running one; its next transaction fails.
      await (await successor.beginTransaction({ producerId: -1n, producerEpoch: -1 })).abort().catch(() => {})
      await publishInputs(input, 2)
      await transform.done
      expect(String(errors.at(-1))).toMatch(/another producer took over its transactionalId/)
      expect(transform.stats).toMatchObject({ messagesIn: 3, aborted: 1 })
      expect(await readWithKcat(output)).toHaveLength(3)
    })

    it('refuses options it cannot work with, naming them', async () => {
      const consumer = groupMember(unique('idem-tx-options'))
      const producer = transactionalClient(unique('idem-tx-options'))
      open.push(
        () => producer.close(),
        () => consumer.close(),
      )
      const base = { client: consumer, producer, topics: ['t'], transform: () => [] }
      await expect(kafkaTransform({ ...base, client: undefined } as never)).rejects.toThrow(/needs client/)
      await expect(kafkaTransform({ ...base, producer: {} as never })).rejects.toThrow(/needs producer/)
      await expect(kafkaTransform({ ...base, topics: [] })).rejects.toThrow(/needs topics/)
      await expect(kafkaTransform({ ...base, transform: undefined } as never)).rejects.toThrow(/needs transform/)
      await expect(kafkaTransform({ ...base, batchSize: 0 })).rejects.toThrow(
        'batchSize must be a positive integer, got 0',
      )
    })
  })

  describe('kafkaTransform in a process killed between sending and committing', () => {
    const children: ChildProcess[] = []
    afterAll(() => {
      for (const child of children) child.kill('SIGKILL')
    })

    /** A worker process: its stdout (the counters it prints on SIGTERM), its stdout and stderr, and how it ended. */
    function worker(args: string[]) {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      children.push(child)
      let stdout = ''
      let all = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        all += chunk.toString()
      })
      child.stderr?.on('data', (chunk: Buffer) => {
        all += chunk.toString()
      })
      const exited = new Promise<string | number>((resolve) => {
        child.once('exit', (code, signal) => resolve(signal ?? code ?? -1))
      })
      return { child, stdout: () => stdout, output: () => all, exited }
    }

    it('lets the process restarted with the same transactionalId write each output exactly once', async () => {
      const input = unique('idem-tx-crash-in')
      const output = unique('idem-tx-crash-out')
      const group = unique('idem-tx-crash-group')
      const txid = unique('idem-tx-crash')
      const total = 30
      await Promise.all([createTopic(input, 2), createTopic(output)])
      await publishInputs(input, total)
      // biome-ignore format: one flag and its value per line
      const args = [
        '--input', input,
        '--output', output,
        '--group', group,
        '--txid', txid,
        '--batch-size', '5',
      ]

      // Two transactions commit; the third has its outputs sent and offsets added when the process dies.
      const doomed = worker([...args, '--kill-on-commit', '3'])
      expect(await doomed.exited, doomed.output()).toBe('SIGKILL')
      const before = await readWithKcat(output, KAFKA, 'committed')
      const inLog = await readWithKcat(output, KAFKA, 'uncommitted')
      expect(before.length).toBeLessThan(total)
      expect(inLog.length, 'the killed transaction left outputs in the log').toBeGreaterThan(before.length)

      const successor = worker(args)
      await until(
        () => `every input transformed and committed (worker: ${successor.output()})`,
        async () =>
          (await readWithKcat(output, KAFKA, 'committed')).length >= total &&
          sum(await committedOffsets(group, input, 2)) === BigInt(total),
        45_000,
      )
      successor.child.kill('SIGTERM')
      expect(await successor.exited, successor.output()).toBe(0)

      const committed = await readWithKcat(output, KAFKA, 'committed')
      expect(committed.map((r) => JSON.parse(r.value).n).sort((a, b) => a - b)).toEqual(range(total))
      expect(repeated(ids(committed))).toEqual([])
      // The killed transaction's outputs are still in the log, aborted: the same ids, written twice.
      const uncommitted = await readWithKcat(output, KAFKA, 'uncommitted')
      expect(uncommitted.length).toBeGreaterThan(total)
      expect(repeated(ids(uncommitted)).length).toBe(uncommitted.length - total)
      expect(new Set(ids(uncommitted))).toEqual(new Set(ids(committed)))
      const stats = JSON.parse(successor.stdout().trim().split('\n').at(-1) as string) as Record<string, number>
      expect(stats.messagesIn).toBe(total - before.length)
      expect(stats.aborted).toBe(0)
    }, 60_000)
  })
}
