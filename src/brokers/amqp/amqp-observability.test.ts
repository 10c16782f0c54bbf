import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  gate,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import { until } from '../../../test/support/until.test-helper.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeAmqp } from './amqp-consumer.js'
import { amqpProducer } from './amqp-producer.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

/** The handle's lag(), which every AMQP handle has. */
function lagOf(handle: Pick<ConsumerHandle, 'lag'>): Promise<number | undefined> {
  if (handle.lag === undefined) throw new Error('the AMQP handle has no lag()')
  return handle.lag()
}

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('consumeAmqp: headers() and lag()', () => {
    let connection: amqp.ChannelModel
    const queues: string[] = []

    beforeAll(async () => {
      connection = await connect('idem-amqp-observability-test')
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue)
      await connection.close()
    })

    async function freshQueue(): Promise<string> {
      const channel = await connection.createChannel()
      const queue = await declareQueue(channel, isolatedName('idem_amqp_obs'), 'quorum')
      await channel.close()
      queues.push(queue)
      return queue
    }

    const idem = () => new Idempotency({ store: new MemoryStore(), scope: 'amqp-obs', lease: '10s' })

    it("gives the handler the producer's headers as strings, traceparent included", async () => {
      const queue = await freshQueue()
      const producer = amqpProducer({ client: connection, routingKey: queue })
      const seen: Readonly<Record<string, string | undefined>>[] = []
      let sameRecord = false
      const sub = await consumeAmqp({
        client: connection,
        queue,
        idem: idem(),
        handler: (_payload, ctx) => {
          const headers = ctx.delivery.headers?.()
          if (headers === undefined) throw new Error('the AMQP delivery has no headers()')
          sameRecord = ctx.delivery.headers?.() === headers
          seen.push(headers)
        },
      })
      await producer.publish({
        id: `${queue}:traced`,
        payload: { n: 1 },
        headers: { traceparent: TRACEPARENT, tracestate: 'vendor=abc', 'x-other': 'v' },
      })
      await until('the traced message handled', () => seen.length === 1)
      await sub.close()
      await producer.close()

      expect(seen[0]).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc', 'x-other': 'v' })
      expect(sameRecord).toBe(true)
    })

    it('turns the table values a raw publisher may send into strings, names kept as published', async () => {
      const queue = await freshQueue()
      const seen: Readonly<Record<string, string | undefined>>[] = []
      const sub = await consumeAmqp({
        client: connection,
        queue,
        idem: idem(),
        handler: (_payload, ctx) => {
          seen.push(ctx.delivery.headers?.() ?? {})
        },
      })
      const channel = await connection.createConfirmChannel()
      channel.publish('', queue, Buffer.from('{}'), {
        messageId: `${queue}:raw`,
        headers: {
          traceparent: Buffer.from(TRACEPARENT),
          'X-Mixed-Case': 'kept',
          count: 3,
          flag: true,
          list: ['a', 'b'],
          absent: null,
        },
      })
      await channel.waitForConfirms()
      await channel.close()
      await until('the raw message handled', () => seen.length === 1)
      await sub.close()

      expect(seen[0]).toEqual({
        traceparent: TRACEPARENT,
        'X-Mixed-Case': 'kept',
        count: '3',
        flag: 'true',
        list: 'a, b',
      })
    })

    it('counts the ready messages of the queue as lag, down to 0 once drained', async () => {
      const queue = await freshQueue()
      const producer = amqpProducer({ client: connection, routingKey: queue })
      for (let i = 0; i < 5; i++) await producer.publish({ id: `${queue}:${i}`, payload: { i } })
      const held = gate()
      let started = 0
      const settled: DeliveryResult[] = []
      const sub = await consumeAmqp({
        client: connection,
        queue,
        prefetch: 1,
        concurrency: 1,
        idem: idem(),
        on: { settled: (result) => settled.push(result) },
        handler: async () => {
          started++
          await held.promise
        },
      })
      // One message is delivered (unacknowledged, not counted), four wait in the queue.
      await until('the first handler to start', () => started === 1)
      await until(
        () => 'lag 4',
        async () => (await lagOf(sub)) === 4,
      )
      held.open()
      await until('all five settled', () => settled.length === 5)
      await until(
        () => 'lag 0',
        async () => (await lagOf(sub)) === 0,
      )
      await sub.close()
      await producer.close()
      expect(settled.every((r) => r.outcome === 'executed')).toBe(true)
      expect(await lagOf(sub)).toBeUndefined()
    })

    it('rejects lag() with the broker error when the queue is gone, without touching the consumer, and asks again on a new channel', async () => {
      const queue = await freshQueue()
      const sub = await consumeAmqp({
        client: connection,
        queue,
        idem: idem(),
        handler: () => {},
      })
      expect(await lagOf(sub)).toBe(0)
      const admin = await connection.createChannel()
      await admin.deleteQueue(queue)
      await expect(lagOf(sub)).rejects.toThrow(/NOT_FOUND|404/)
      await declareQueue(admin, queue, 'quorum')
      await admin.sendToQueue(queue, Buffer.from('{}'), { messageId: `${queue}:after`, persistent: true })
      await admin.close()
      // The lag channel was closed by the 404; the next call opens another one.
      await until(
        () => 'lag() to answer again',
        async () => {
          const lag = await lagOf(sub).catch(() => -1)
          return lag === 0 || lag === 1
        },
      )
      await sub.close()
    })
  })
}
