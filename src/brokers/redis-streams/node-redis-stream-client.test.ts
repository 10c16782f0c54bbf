// The node-redis wrapper against the real Redis (127.0.0.1:6379): for the commands the adapter
// sends, it must answer exactly what ioredis answers (the shapes stream-group.ts parses), over
// RESP2 and over RESP3 (node-redis 6's default); a MULTI reports each command's error in its place;
// and the duplicate it makes connects on first use.

import { Redis } from 'ioredis'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { streamClientOf } from './node-redis-stream-client.js'
import type { RedisStreamClient, StreamArg } from './redis-streams-driver.js'

async function nodeRedis(RESP: 2 | 3, reconnect = true): Promise<RedisClientType> {
  const client = createClient({
    RESP,
    socket: { host: '127.0.0.1', port: SERVICES.Redis.port, reconnectStrategy: reconnect ? 50 : false },
  })
  client.on('error', () => {})
  await client.connect()
  return client as RedisClientType
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('a node-redis client as a RedisStreamClient', () => {
    const stream = `${isolatedName('idem_nrs')}:orders`
    let ioredis: Redis
    const opened: RedisClientType[] = []
    beforeAll(async () => {
      ioredis = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port })
      for (const RESP of [2, 3] as const) opened.push(await nodeRedis(RESP))
    })
    afterAll(async () => {
      await ioredis.del(stream, `${stream}:dead`, `${stream}:string`)
      ioredis.disconnect()
      for (const client of opened) client.destroy()
    })

    it('answers every command the adapter sends as ioredis does, over RESP2 and RESP3', async () => {
      await ioredis.call('XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM')
      for (let i = 0; i < 3; i++) await ioredis.xadd(stream, '*', 'id', `m-${i}`, 'payload', `{"n":${i}}`)
      // All read by a consumer "first", then the same read-only questions asked through each client.
      await ioredis.call('XREADGROUP', 'GROUP', 'g', 'first', 'COUNT', 10, 'STREAMS', stream, '>')
      const questions: [string, ...StreamArg[]][] = [
        ['XREADGROUP', 'GROUP', 'g', 'first', 'COUNT', 10, 'STREAMS', stream, '0'],
        // Nothing new to read: a timeout (null).
        ['XREADGROUP', 'GROUP', 'g', 'nobody', 'COUNT', 10, 'BLOCK', 10, 'STREAMS', stream, '>'],
        ['XPENDING', stream, 'g'],
        ['XINFO', 'GROUPS', stream],
        ['XCLAIM', stream, 'g', 'first', 0, '0-1', 'JUSTID'],
      ]
      const expected = await Promise.all(questions.map((q) => ioredis.call(...q)))
      for (const client of opened) {
        const wrapped = streamClientOf(client)
        const answers = await Promise.all(questions.map((q) => wrapped.call(...q)))
        // XINFO over RESP3 is a map: stream-group.ts reads both forms, so compare it by its fields.
        expect(answers.slice(0, 3)).toEqual(expected.slice(0, 3))
        expect(fields(answers[3])).toEqual(fields(expected[3]))
        expect(answers[4]).toEqual(expected[4])
        expect(expected[1]).toBeNull()
      }
      // Replies that change state: a new entry read with '>', then XAUTOCLAIM and XPENDING's rows.
      for (const client of [ioredis, ...opened]) {
        const wrapped = streamClientOf(client)
        await ioredis.xadd(stream, '*', 'id', 'late', 'payload', '{}')
        const read = (await wrapped.call('XREADGROUP', 'GROUP', 'g', 'second', 'COUNT', 1, 'STREAMS', stream, '>')) as [
          string,
          [string, string[]][],
        ][]
        expect(read).toEqual([[stream, [[expect.any(String), ['id', 'late', 'payload', '{}']]]]])
        const claimed = (await wrapped.call('XAUTOCLAIM', stream, 'g', 'third', 0, '0-0', 'COUNT', 1)) as unknown[]
        expect(claimed).toEqual([expect.any(String), [[expect.any(String), expect.any(Array)]], []])
        const rows = (await wrapped.call('XPENDING', stream, 'g', '-', '+', 1)) as unknown[][]
        expect(rows).toEqual([[expect.any(String), expect.any(String), expect.any(Number), expect.any(Number)]])
      }
    })

    it("reports each MULTI command's error in its place, as ioredis does", async () => {
      await ioredis.set(`${stream}:string`, 'not a stream')
      const commands: StreamArg[][] = [
        ['xadd', `${stream}:dead`, '*', 'a', 'b'],
        ['xack', `${stream}:string`, 'g', '0-1'],
      ]
      const shape = async (client: RedisStreamClient) =>
        ((await client.multi(commands).exec()) ?? []).map(([error, reply]) => [
          error?.message ?? null,
          error === null ? typeof reply : null,
        ])
      const expected = await shape(ioredis as unknown as RedisStreamClient)
      expect(expected).toEqual([
        [null, 'string'],
        [expect.stringMatching(/^WRONGTYPE/), null],
      ])
      for (const client of opened) expect(await shape(streamClientOf(client))).toEqual(expected)
      // A command refused before EXEC discards the whole transaction: the call rejects.
      for (const client of opened) {
        await expect(
          streamClientOf(client)
            .multi([['xadd', `${stream}:dead`, '*', 'a']])
            .exec(),
        ).rejects.toThrow(/wrong number of arguments/)
      }
    })

    it('makes a duplicate that connects on first use, again after its connection closed, and not after quit', async () => {
      const client = await nodeRedis(3, false) // gives up at the first disconnection
      opened.push(client)
      const duplicate = streamClientOf(client).duplicate()
      const id = Number(await duplicate.call('CLIENT', 'ID'))
      expect(id).not.toBe(Number(await client.sendCommand(['CLIENT', 'ID'])))
      await ioredis.call('CLIENT', 'KILL', 'ID', id)
      // The killed connection stays closed (reconnectStrategy false): the next command opens a new one.
      await expect.poll(() => duplicate.call('PING').catch(() => 'failed'), { timeout: 2000 }).toBe('PONG')
      expect(Number(await duplicate.call('CLIENT', 'ID'))).not.toBe(id)
      await duplicate.quit()
      await expect(duplicate.call('PING')).rejects.toThrow(/closed/)
    })

    it('takes an ioredis client as it is, and refuses a node-redis cluster or anything else', () => {
      expect(streamClientOf(ioredis)).toBe(ioredis)
      const cluster = { sendCommand: () => {}, isOpen: true, masters: [] }
      expect(() => streamClientOf(cluster as never)).toThrow(/not a cluster/)
      expect(() => streamClientOf({} as never)).toThrow(/expected an ioredis Redis or a node-redis client/)
    })
  })
}

/** An XINFO GROUPS reply as one field map per group, whichever form it came in. */
function fields(reply: unknown): Record<string, unknown>[] {
  return (reply as unknown[]).map((group) =>
    Array.isArray(group)
      ? Object.fromEntries(Array.from({ length: group.length / 2 }, (_, i) => [group[2 * i], group[2 * i + 1]]))
      : (group as Record<string, unknown>),
  )
}
