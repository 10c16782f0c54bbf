// How consumeAmqp is built: the flat options, listeners given before the first delivery of a
// queue that already holds messages, a ready-made consumer, the deprecated forms, and the strict
// UTF-8 rule of the default decoder.

import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  drainQueue,
  queueDepth,
  until,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeAmqp } from './amqp-consumer.js'
import { IdemHeader } from './amqp-message.js'

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('building consumeAmqp on RabbitMQ', () => {
    let connection: amqp.ChannelModel
    const queues: string[] = []

    beforeAll(async () => {
      connection = await connect('idem-amqp-construction-test')
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue, [200])
      await connection.close()
    })

    /** A fresh queue already holding `count` messages. */
    async function filledQueue(count: number): Promise<string> {
      const channel = await connection.createConfirmChannel()
      const queue = await declareQueue(channel, isolatedName('idem_amqp_build'), 'quorum')
      queues.push(queue)
      for (let i = 0; i < count; i++) {
        channel.sendToQueue(queue, Buffer.from(JSON.stringify({ n: i })), {
          messageId: `${queue}:${i}`,
          persistent: true,
        })
      }
      await channel.waitForConfirms()
      await channel.close()
      return queue
    }

    const idem = () => new Idempotency({ store: new MemoryStore(), scope: 'amqp-build', lease: '10s' })

    it('hands the on listeners every delivery of a queue that is not empty at start', async () => {
      const queue = await filledQueue(40)
      const received: string[] = []
      const settled: DeliveryResult[] = []
      const handle = await consumeAmqp<{ n: number }>({
        client: connection,
        queue,
        retry: { delayTiers: ['200ms'] },
        idem: idem(),
        concurrency: 16,
        handler: () => {},
        on: { received: (e) => received.push(e.key), settled: (r) => settled.push(r) },
      })
      await until(() => settled.length === 40, 'forty settled deliveries')
      await handle.close()
      await handle.done
      expect(new Set(received).size).toBe(40)
      expect(settled.every((r) => r.outcome === 'executed')).toBe(true)
      expect(await queueDepth(connection, queue)).toBe(0)
    })

    it('feeds a ready-made consumer, listened to before consuming starts', async () => {
      const queue = await filledQueue(10)
      const settled: string[] = []
      const consumer = new IdempotentConsumer<{ n: number }>({ idem: idem(), handler: () => {} })
      consumer.on('settled', (r) => settled.push(r.key))
      const handle = await consumeAmqp({ client: connection, queue, consumer })
      expect(handle.consumer).toBe(consumer)
      await until(() => settled.length === 10, 'ten settled deliveries')
      await handle.close()
      expect(new Set(settled).size).toBe(10)
    })

    it('still accepts connection and nested consumer options, warning once for each', async () => {
      const queue = await filledQueue(3)
      const warn = vi.spyOn(process, 'emitWarning')
      const seen: number[] = []
      let messages: string[] = []
      try {
        const handle = await consumeAmqp<{ n: number }>({
          connection,
          queue,
          batch: { size: 3, maxWaitMs: 50 },
          consumer: { idem: idem(), handler: (order) => void seen.push(order.n) },
        })
        await until(() => seen.length === 3, 'three handled messages')
        await handle.close()
        messages = warn.mock.calls.map((call) => String(call[0]))
      } finally {
        warn.mockRestore()
      }
      expect(messages).toContain('consumeAmqp({ connection }) is deprecated: use consumeAmqp({ client }) instead')
      expect(messages).toContain(
        'consumeAmqp({ batch.maxWaitMs }) is deprecated: use consumeAmqp({ batch.maxWait }) instead',
      )
      expect(messages.some((m) => m.startsWith('consumeAmqp({ consumer: { idem, handler, … } }) is deprecated'))).toBe(
        true,
      )
      expect(seen.sort()).toEqual([0, 1, 2])
    })

    it('dead-letters a body that is not valid UTF-8, saying so, without running the handler', async () => {
      const queue = await filledQueue(0)
      let calls = 0
      const handle = await consumeAmqp({
        client: connection,
        queue,
        idem: idem(),
        handler: () => calls++,
        onError: () => {},
      })
      const channel = await connection.createConfirmChannel()
      const body = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
      channel.sendToQueue(queue, body, { messageId: `${queue}:latin1`, persistent: true })
      await channel.waitForConfirms()
      await channel.close()
      await until(async () => (await queueDepth(connection, `${queue}.idem.dlq`)) === 1, 'one dead letter')
      await handle.close()
      const [dead] = await drainQueue(connection, `${queue}.idem.dlq`)
      expect(String(dead?.properties.headers?.[IdemHeader.DEAD_LETTER_REASON])).toMatch(
        /could not be decoded: the payload is not valid UTF-8/,
      )
      expect(dead?.content.equals(body)).toBe(true)
      expect(handle.stats.rejected).toBe(1)
      expect(calls).toBe(0)
    })

    it('says which option is missing or wrong', async () => {
      await expect(consumeAmqp({ queue: 'q', idem: idem(), handler: () => {} } as never)).rejects.toThrow(
        /consumeAmqp needs client/,
      )
      await expect(consumeAmqp({ client: connection, queue: 'q' } as never)).rejects.toThrow(/consumeAmqp needs idem/)
      await expect(
        consumeAmqp({ client: connection, queue: 'q', prefetch: 0, idem: idem(), handler: () => {} }),
      ).rejects.toThrow('prefetch must be a positive integer, got 0')
    })
  })
}
