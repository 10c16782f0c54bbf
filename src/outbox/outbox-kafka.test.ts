// The outbox relayed to Kafka through kafkaProducer: each row becomes one record carrying the outbox
// id in the idem-message-id header (read back with kcat), a row's destination and headers are kept,
// and a consumer with Idem records (consumeKafka on a MemoryStore) applies a row published twice
// (a relay that lost the broker's confirmation and published it again) once.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import {
  createTopic,
  groupMember,
  producerClient,
  readWithKcat,
  unique,
} from '../../test/support/brokers/kafka/kafka.test-helper.js'
import { countById, DATABASES, type OutboxRig } from '../../test/support/outbox/outbox-rigs.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { consumeKafka } from '../brokers/kafka/consume-kafka.js'
import { kafkaProducer } from '../brokers/kafka/kafka-producer.js'
import type { DeliveryOutcome } from '../consumer/types.js'
import { Idempotency } from '../core/idempotency.js'
import { MemoryStore } from '../stores/memory/memory-store.js'
import { OutboxRelay } from './relay.js'

const sqlite = DATABASES.find((database) => database.name === 'SQLite')

if (sqlite !== undefined && (await requireService('Kafka', SERVICES.Kafka.port))) {
  describe('outbox relayed to Kafka', () => {
    let rig: OutboxRig
    const client = producerClient()
    beforeAll(async () => {
      rig = await sqlite.make()
    })
    afterAll(async () => {
      await client.close()
      await rig?.cleanup()
    })

    it('writes each row once with its id header, and a consumer applies a republished row once', async () => {
      const topic = unique('idem-outbox')
      const audit = unique('idem-outbox-audit')
      await Promise.all([createTopic(topic, 2), createTopic(audit)])
      const ids = await rig.db.transaction((_tx, sql) =>
        rig.outbox.addMany(sql, [
          { payload: { n: 1 } },
          { payload: { n: 2 }, headers: { 'trace-id': 't-2' } },
          { payload: { n: 3 } },
          { payload: { n: 4 }, destination: audit },
        ]),
      )
      const producer = kafkaProducer({ client, topic })
      const relay = new OutboxRelay({ outbox: rig.outbox, db: rig.db, producer })
      expect(await relay.runOnce()).toMatchObject({ claimed: 4, published: 4, retried: 0, failed: 0 })
      expect(await relay.runOnce()).toMatchObject({ claimed: 0 })
      for (const id of ids) expect((await rig.row(id))?.status).toBe('sent')

      const records = await readWithKcat(topic)
      expect(countById(records.map((r) => r.headers['idem-message-id'] as string))).toEqual(
        new Map([
          [ids[0], 1],
          [ids[1], 1],
          [ids[2], 1],
        ]),
      )
      const second = records.find((r) => r.headers['idem-message-id'] === ids[1])
      expect(second?.headers['trace-id']).toBe('t-2')
      expect(JSON.parse(second?.value ?? 'null')).toEqual({ n: 2 })
      const routed = await readWithKcat(audit)
      expect(routed.map((r) => [r.headers['idem-message-id'], JSON.parse(r.value)])).toEqual([[ids[3], { n: 4 }]])

      // A relay that published ids[0] and lost the confirmation publishes it again: a second record, the same id.
      await producer.publish({ id: ids[0] as string, payload: { n: 1 } })
      expect((await readWithKcat(topic)).filter((r) => r.headers['idem-message-id'] === ids[0])).toHaveLength(2)

      const consumer = groupMember(unique('idem-outbox-consumer'))
      const effects = new Map<string, number>()
      const outcomes: [DeliveryOutcome, string][] = []
      const handle = await consumeKafka<{ n: number }>({
        client: consumer,
        producer: client,
        topics: [topic],
        idem: new Idempotency({ store: new MemoryStore(), scope: 'outbox-kafka' }),
        handler: (_payload, ctx) => {
          effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
        },
        on: { settled: (result) => outcomes.push([result.outcome, result.key]) },
      })
      try {
        // Both copies of ids[0] may be on different partitions, handled at once: one of them may be
        // retried (in progress elsewhere) before it is replayed.
        const count = (outcome: DeliveryOutcome) => outcomes.filter(([o]) => o === outcome).length
        await until(
          () => `3 executed and 1 replayed (${JSON.stringify(outcomes)})`,
          () => count('executed') === 3 && count('replayed') === 1,
        )
      } finally {
        await handle.close()
        await consumer.close()
      }
      expect(effects).toEqual(
        new Map([
          [ids[0], 1],
          [ids[1], 1],
          [ids[2], 1],
        ]),
      )
      expect(outcomes.filter(([outcome]) => outcome === 'replayed')).toEqual([['replayed', ids[0]]])
    })
  })
}
