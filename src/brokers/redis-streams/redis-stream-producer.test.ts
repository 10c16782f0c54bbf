// How redisStreamProducer is built (one options object, the client's ownership, the maxLen check),
// on a fake client: XADD against Redis runs in redis-streams.test.ts.

import { describe, expect, it, vi } from 'vitest'
import { redisStreamProducer } from './redis-stream-producer.js'
import type { RedisStreamClient, StreamArg } from './redis-streams-driver.js'

function fakeRedis() {
  const commands: StreamArg[][] = []
  const client = {
    commands,
    quits: 0,
    async call(...args: StreamArg[]) {
      commands.push(args)
      return '1-0'
    },
    multi: () => ({ exec: async () => [] }) as never,
    duplicate: () => client as unknown as RedisStreamClient,
    async quit() {
      client.quits++
      return 'OK'
    },
    disconnect: () => {},
  }
  return client
}

/** What a connected node-redis client shows the producer: sendCommand with string arguments, close. */
function fakeNodeRedis() {
  const commands: string[][] = []
  const client = {
    commands,
    closes: 0,
    isOpen: true,
    async sendCommand(args: readonly string[]) {
      commands.push([...args])
      return '1-0'
    },
    multi: () => ({ addCommand: () => {}, exec: async () => [] }),
    duplicate: () => client,
    connect: async () => client,
    on: () => client,
    emit: () => false,
    listenerCount: () => 0,
    async close() {
      client.closes++
    },
  }
  return client
}

describe('redisStreamProducer construction', () => {
  it('takes a node-redis client too, sending XADD as strings, and never closes it', async () => {
    const redis = fakeNodeRedis()
    const producer = redisStreamProducer({ client: redis, stream: 'orders', maxLen: 10 })
    await producer.publish({ id: 'n-1', payload: { n: 1 } })
    await producer.close()
    expect(redis.commands).toEqual([['XADD', 'orders', 'MAXLEN', '~', '10', '*', 'id', 'n-1', 'payload', '{"n":1}']])
    expect(redis.closes).toBe(0)
  })

  it("awaits a factory's promise of a node-redis client (createClient().connect()) and closes that client", async () => {
    const redis = fakeNodeRedis()
    const producer = redisStreamProducer({ client: async () => redis, stream: 'orders' })
    await producer.publish({ id: 'p-1', payload: 1 })
    await producer.close()
    expect([redis.commands.length, redis.closes]).toEqual([1, 1])
  })

  it('takes the ioredis client as { client } and never quits it', async () => {
    const redis = fakeRedis()
    const producer = redisStreamProducer({ client: redis, stream: 'orders', maxLen: 10 })
    await producer.publish({ id: 'r-1', payload: { n: 1 } })
    await producer.close()
    expect(redis.commands).toEqual([['XADD', 'orders', 'MAXLEN', '~', 10, '*', 'id', 'r-1', 'payload', '{"n":1}']])
    expect(redis.quits).toBe(0)
  })

  it('calls a factory on the first publish and quits the client it made in close()', async () => {
    const redis = fakeRedis()
    const factory = vi.fn(() => redis)
    const producer = redisStreamProducer({ client: factory, stream: 'orders' })
    expect(factory).not.toHaveBeenCalled()
    await producer.publish({ id: 'f-1', payload: 1 })
    await producer.publish({ id: 'f-2', payload: 1 })
    await producer.close()
    expect([factory.mock.calls.length, redis.commands.length, redis.quits]).toEqual([1, 2, 1])
  })

  it('keeps the old (client, options) form, with one deprecation warning', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const redis = fakeRedis()
      await redisStreamProducer(redis, { stream: 'old' }).publish({ id: 'o-1', payload: 1 })
      await redisStreamProducer(redis, { stream: 'old' }).publish({ id: 'o-2', payload: 1 })
      expect(redis.commands.map((c) => c[1])).toEqual(['old', 'old'])
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/redisStreamProducer\(client, options\) is deprecated/)
    } finally {
      warn.mockRestore()
    }
  })

  it('refuses a missing client or stream, and a maxLen that is not a positive integer, naming the option', () => {
    expect(() => redisStreamProducer({ stream: 's' } as never)).toThrow(/redisStreamProducer needs \{ client \}/)
    expect(() => redisStreamProducer({ client: fakeRedis() } as never)).toThrow(/needs \{ stream \}/)
    expect(() => redisStreamProducer({ client: fakeRedis(), stream: 's', maxLen: 0 })).toThrow(
      'maxLen must be a positive integer, got 0',
    )
  })
})
