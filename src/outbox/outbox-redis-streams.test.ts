// The outbox relayed through a real broker's producer: Redis Streams (XADD, the id in a field).
// The stream's entries carry the outbox ids, and a consumer keyed on them applies a message
// published twice (a relay that lost its lease) once.

import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { consume, countById, DATABASES, type OutboxRig } from '../../test/support/outbox/outbox-rigs.test-helper.js'
import { redisStreamProducer } from '../brokers/redis-streams/redis-stream-producer.js'
import { OutboxRelay } from './relay.js'

const sqlite = DATABASES.find((database) => database.name === 'SQLite')

if (sqlite !== undefined && (await requireService('Redis', SERVICES.Redis.port))) {
  describe('outbox relayed to Redis Streams', () => {
    let rig: OutboxRig
    let redis: Redis
    const stream = isolatedName('idem-outbox')
    beforeAll(async () => {
      rig = await sqlite.make()
      redis = new Redis(SERVICES.Redis.url)
    })
    afterAll(async () => {
      await redis?.del(stream)
      redis?.disconnect()
      await rig?.cleanup()
    })

    it('puts each outbox id in the stream entry, and the consumer applies a republished one once', async () => {
      const ids = await rig.db.transaction((_tx, sql) =>
        rig.outbox.addMany(
          sql,
          [1, 2, 3].map((n) => ({ payload: { n } })),
        ),
      )
      const producer = redisStreamProducer({ client: redis, stream })
      expect(await new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer }).runOnce()).toMatchObject({
        published: 3,
      })
      // A relay that published ids[0] and died before marking it: its successor publishes it again.
      await producer.publish({ id: ids[0] as string, payload: { n: 1 } })

      const entries = (await redis.xrange(stream, '-', '+')).map(([, fields]) => {
        const record: Record<string, string> = {}
        for (let i = 0; i < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string
        return { id: record.id as string, payload: JSON.parse(record.payload as string) as unknown }
      })
      expect(countById(entries.map((entry) => entry.id))).toEqual(
        new Map([
          [ids[0], 2],
          [ids[1], 1],
          [ids[2], 1],
        ]),
      )
      expect(await consume(rig, entries)).toBe(1)
      for (const id of ids) expect(await rig.effect(id)).toBe(1)
    })
  })
}
