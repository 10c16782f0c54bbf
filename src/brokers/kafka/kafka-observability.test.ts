// headers() and lag() of consumeKafka on the real broker (127.0.0.1:9092). Each test has its own
// topic and group; Idem's records are in memory.

import type { Consumer, Producer } from '@platformatic/kafka'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  createTopic,
  groupMember,
  producerClient,
  unique,
  until,
} from '../../../test/support/brokers/kafka/kafka.test-helper.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeKafka, type KafkaHandle } from './consume-kafka.js'
import { MESSAGE_ID_HEADER } from './kafka-headers.js'
import { kafkaProducer } from './kafka-producer.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

function lagOf(handle: Pick<ConsumerHandle, 'lag'>): Promise<number | undefined> {
  if (handle.lag === undefined) throw new Error('the Kafka handle has no lag()')
  return handle.lag()
}

/** A promise the handler waits on, and its release. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

if (await requireService('Kafka', SERVICES.Kafka.port)) {
  describe('consumeKafka: headers() and lag()', () => {
    let producer: Producer
    const handles: KafkaHandle<unknown, unknown>[] = []
    const clients: Consumer[] = []

    beforeAll(() => {
      producer = producerClient()
    })
    afterEach(async () => {
      for (const handle of handles.splice(0)) await handle.close()
      for (const client of clients.splice(0)) await client.close()
    })
    afterAll(async () => {
      await producer.close()
    })

    async function consume(
      topic: string,
      handler: (payload: unknown, ctx: { key: string; delivery: { headers?(): unknown } }) => unknown,
      extra: { concurrency?: number; settled?: DeliveryResult[] } = {},
    ): Promise<KafkaHandle<unknown, unknown>> {
      const client = groupMember(unique('obs'))
      clients.push(client)
      const handle = await consumeKafka({
        client,
        producer,
        topics: [topic],
        commitInterval: '20ms',
        idem: new Idempotency({ store: new MemoryStore(), scope: 'kafka-obs' }),
        ...(extra.concurrency === undefined ? {} : { concurrency: extra.concurrency }),
        on: { settled: (result) => extra.settled?.push(result) },
        handler,
      })
      handles.push(handle)
      return handle
    }

    /** One record with its id header (and `more` headers) to `partition`. */
    async function sendTo(topic: string, partition: number, id: string, more: [string, string][] = []) {
      const headers = new Map<Buffer, Buffer>([[Buffer.from(MESSAGE_ID_HEADER), Buffer.from(id)]])
      for (const [name, value] of more) headers.set(Buffer.from(name), Buffer.from(value))
      await producer.send({
        messages: [{ topic, partition, value: Buffer.from(JSON.stringify({ id })), headers }],
        acks: -1,
      })
    }

    it("gives the handler the record's headers as text, a repeated one joined, names as written", async () => {
      const topic = unique('idem-obs-headers')
      await createTopic(topic, 1)
      const orders = kafkaProducer({ client: producer, topic })
      await orders.publish({ id: 'traced', payload: { n: 1 }, headers: { traceparent: TRACEPARENT, 'X-Other': 'v' } })
      await sendTo(topic, 0, 'tagged', [
        ['x-tag', 'a'],
        ['x-tag', 'b'],
      ])
      const seen = new Map<string, unknown>()
      let sameRecord = false
      await consume(topic, (_payload, ctx) => {
        const headers = ctx.delivery.headers?.()
        sameRecord = ctx.delivery.headers?.() === headers
        seen.set(ctx.key, headers)
      })
      await until('both records handled', () => seen.size === 2)

      expect(seen.get('traced')).toEqual({ [MESSAGE_ID_HEADER]: 'traced', traceparent: TRACEPARENT, 'X-Other': 'v' })
      expect(seen.get('tagged')).toEqual({ [MESSAGE_ID_HEADER]: 'tagged', 'x-tag': 'a, b' })
      expect(sameRecord).toBe(true)
    })

    it("counts the group's lag over the member's partitions (end - committed, summed), down to 0 once committed", async () => {
      const topic = unique('idem-obs-lag')
      await createTopic(topic, 2)
      for (const [partition, id] of [
        [0, 'a1'],
        [0, 'a2'],
        [0, 'a3'],
        [1, 'b1'],
        [1, 'b2'],
      ] as const) {
        await sendTo(topic, partition, id)
      }
      let held = gate()
      let started = 0
      const settled: DeliveryResult[] = []
      const handle = await consume(
        topic,
        async () => {
          started++
          await held.promise
        },
        { concurrency: 1, settled },
      )
      // Nothing committed yet: every record of both partitions counts from the partition's start,
      // the one in the handler included (its offset is not committed).
      await until('the first handler to start', () => started === 1)
      await until(
        () => 'lag 5',
        async () => (await lagOf(handle)) === 5,
      )
      held.open()
      await until('all five settled', () => settled.length === 5)
      await until(
        () => 'lag 0 once the offsets are committed',
        async () => (await lagOf(handle)) === 0,
      )

      // With offsets committed: two more records, held in the handler, count from the committed offset.
      held = gate()
      await sendTo(topic, 0, 'a4')
      await sendTo(topic, 1, 'b3')
      await until('the sixth handler to start', () => started === 6)
      await until(
        () => 'lag 2',
        async () => (await lagOf(handle)) === 2,
      )
      held.open()
      await until('all seven settled', () => settled.length === 7)
      await until(
        () => 'lag 0 again',
        async () => (await lagOf(handle)) === 0,
      )
      await handle.close()
      expect(await lagOf(handle)).toBeUndefined()
    })
  })
}
