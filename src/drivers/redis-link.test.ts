import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../test/services.js'
import { redisClient } from '../../test/support/stores/redis/redis-harness.test-helper.js'
import { linkTo } from './redis-link.js'

interface Writable {
  _write: (...args: unknown[]) => unknown
  _writev?: (...args: unknown[]) => unknown
  writableCorked: number
}

/** Counts the writes that reach the socket (one `_write` or `_writev` each) from now on. */
function countWrites(stream: Writable): () => number {
  let writes = 0
  const { _write, _writev } = stream
  stream._write = function (this: unknown, ...args: unknown[]) {
    writes++
    return _write.apply(this, args)
  }
  if (_writev !== undefined) {
    stream._writev = function (this: unknown, ...args: unknown[]) {
      writes++
      return _writev.apply(this, args)
    }
  }
  return () => writes
}

if (await requireService('Redis', 6379)) {
  describe('the Redis link on ioredis', () => {
    const client = redisClient()
    afterAll(() => client.quit())

    it('writes the commands of a busy tick together, and a command on an idle connection at once', async () => {
      await client.set('idem-link-test', 'v', 'PX', 10_000)
      const link = linkTo(client)
      const stream = client.stream as unknown as Writable
      const writes = countWrites(stream)

      const alone = link.send('idem-link-test', ['GET', 'idem-link-test'])
      // Idle: not corked, the command is on its way already.
      expect(stream.writableCorked).toBe(0)
      expect(writes()).toBe(1)
      expect(await alone).toBe('v')

      const before = writes()
      const replies = await Promise.all(
        Array.from({ length: 20 }, () => link.send('idem-link-test', ['GET', 'idem-link-test'])),
      )
      expect(replies).toEqual(Array(20).fill('v'))
      // The first goes at once (the connection was idle), the 19 after it leave in one write.
      expect(writes() - before).toBe(2)

      // Plain ioredis, for comparison: one write per command.
      const plain = writes()
      await Promise.all(Array.from({ length: 20 }, () => client.get('idem-link-test')))
      expect(writes() - plain).toBe(20)
    })
  })
}
