// A consumer process SIGKILLed in the middle of a handler: the message it held stays pending in the
// group, another member claims it with XAUTOCLAIM once it has been idle for claimIdle, waits out
// the dead worker's Idem lease, and runs it once. Effects are counted in Redis, not in the child.
// Once per driver: the child and the surviving member on ioredis, then on node-redis.

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  cleanup,
  consumerClient,
  destroyClient,
  idemFor,
  pending,
  REDIS_DRIVERS,
  streamClient,
  type TestStream,
  testStream,
  until,
} from '../../../test/support/brokers/redis-streams/redis-streams.test-helper.js'
import { consumeRedisStream } from './consume-redis-stream.js'
import { redisStreamProducer } from './redis-stream-producer.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('a Redis Streams consumer process killed mid-handler', () => {
    const tests: TestStream[] = []
    let admin: Redis
    let child: ChildProcess | undefined
    beforeAll(() => {
      admin = streamClient(SERVICES.Redis.port)
    })
    afterAll(async () => {
      child?.kill('SIGKILL')
      for (const test of tests) await cleanup(admin, test)
      admin.disconnect()
    })

    it.each(REDIS_DRIVERS)(
      'has the message it held redelivered to another member and run once; nothing else is redone (%s)',
      async (driver) => {
        const test = testStream()
        tests.push(test)
        const producer = redisStreamProducer({ client: admin, stream: test.stream })
        const publish = (from: number, to: number) =>
          Promise.all(
            Array.from({ length: to - from }, (_, i) =>
              producer.publish({ id: `order-${from + i}`, payload: { n: from + i } }),
            ),
          )
        const effects = async () => (await admin.hgetall(`${test.prefix}:effects`)) as Record<string, string>
        await publish(0, 30)

        const worker = fileURLToPath(
          new URL('../../../test/support/brokers/redis-streams/redis-streams-crash.worker.ts', import.meta.url),
        )
        // biome-ignore format: one flag and its value per line
        const args = [
        '--stream', test.stream,
        '--group', test.group,
        '--prefix', test.prefix,
        '--hang-on', 'order-10',
        '--driver', driver,
      ]
        const doomed = spawn(process.execPath, ['--import', 'tsx', worker, ...args], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        child = doomed
        let stderr = ''
        doomed.stderr?.on('data', (chunk: Buffer) => {
          stderr += chunk.toString()
        })
        // Kill it once it hangs in order-10 and has acknowledged everything else it read.
        await until(
          () => `the child to hang in order-10 (stderr: ${stderr})`,
          async () =>
            (await admin.get(`${test.prefix}:hung`)) === 'order-10' &&
            Object.keys(await effects()).length === 29 &&
            (await pending(admin, test.stream, test.group)) === 1,
          30_000,
        )
        const exited = new Promise((resolve) => doomed.once('exit', (_code, signal) => resolve(signal)))
        doomed.kill('SIGKILL')
        expect(await exited).toBe('SIGKILL')
        const [held] = (await admin.call('XPENDING', test.stream, test.group, '-', '+', 10)) as [string, string][]
        expect(held?.[1]).toBe('doomed')

        await publish(30, 40)
        const c = await consumerClient(driver, SERVICES.Redis.port)
        const recovered: { key: string; deliveryCount: number }[] = []
        const survivor = await consumeRedisStream<{ n: number }>({
          client: c,
          stream: test.stream,
          group: test.group,
          consumerName: 'survivor',
          claimIdle: '1s',
          idem: idemFor(c, test),
          lease: '1s',
          handler: async (_order, ctx) => {
            if (ctx.recovered) recovered.push({ key: ctx.key, deliveryCount: ctx.delivery.deliveryCount })
            await admin.hincrby(`${test.prefix}:effects`, ctx.key, 1)
          },
        })
        try {
          await until('all 40 effects', async () => Object.keys(await effects()).length === 40, 30_000)
          await until(
            'the group to have acknowledged every entry',
            async () => (await pending(admin, test.stream, test.group)) === 0,
          )
        } finally {
          await survivor.close()
          destroyClient(c)
        }
        const counts = Object.values(await effects())
        expect(counts.filter((n) => n !== '1')).toEqual([])
        // The dead worker's claim was taken over: order-10 ran on its second (or a later) delivery.
        expect(recovered).toEqual([{ key: 'order-10', deliveryCount: expect.any(Number) }])
        expect(recovered[0]?.deliveryCount).toBeGreaterThanOrEqual(2)
      },
      40_000,
    )
  })
}
