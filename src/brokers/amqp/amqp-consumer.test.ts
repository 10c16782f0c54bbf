import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  AMQP_URL,
  closeConnectionFromServer,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  drainQueue,
  EffectLog,
  gate,
  type QueueType,
  queueDepth,
  until,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import type { ConsumerHandle } from '../../consumer/handle.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { type AmqpConsumerStats, consumeAmqp } from './amqp-consumer.js'
import { IdemHeader } from './amqp-message.js'
import { amqpProducer } from './amqp-producer.js'

const TIERS = [200]

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('consumeAmqp on RabbitMQ', () => {
    let connection: amqp.ChannelModel
    let effects: EffectLog
    const queues: string[] = []

    beforeAll(async () => {
      connection = await connect('idem-amqp-consumer-test')
      effects = new EffectLog()
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue, TIERS)
      await connection.close()
      effects.close()
    })

    /** A fresh queue, a producer for it, and the settled results of whatever consumes it. */
    async function rig(type: QueueType) {
      const channel = await connection.createChannel()
      const queue = await declareQueue(channel, isolatedName('idem_amqp'), type)
      await channel.close()
      queues.push(queue)
      const producer = amqpProducer({ client: connection, routingKey: queue })
      const idem = new Idempotency({ store: new MemoryStore(), scope: 'amqp-test', lease: '10s' })
      const settled: DeliveryResult[] = []
      const watch = <P>(subscription: ConsumerHandle<P, unknown, AmqpConsumerStats>) => {
        subscription.consumer.on('settled', (r) => settled.push(r))
        return subscription
      }
      return { queue, producer, idem, settled, watch }
    }

    it('runs a message published twice with the same id once, and acks the duplicate', async () => {
      const { queue, producer, idem, settled, watch } = await rig('quorum')
      const sub = watch(
        await consumeAmqp({
          client: connection,
          queue,
          idem,
          handler: (_payload, ctx) => effects.record(ctx.key),
        }),
      )
      const dup = `${queue}:dup`
      await producer.publish({ id: dup, payload: { amount: 10 } })
      await producer.publish({ id: dup, payload: { amount: 10 } })
      await producer.publish({ id: `${queue}:other`, payload: { amount: 5 } })
      await until(() => settled.length === 3, 'three settled deliveries')
      await sub.close()
      await producer.close()

      expect(settled.map((r) => r.outcome).sort()).toEqual(['executed', 'executed', 'replayed'])
      expect(effects.counts().get(dup)).toBe(1)
      expect(effects.counts().get(`${queue}:other`)).toBe(1)
      expect(await queueDepth(connection, queue)).toBe(0)
    })

    it('dead-letters a poison message after maxAttempts with its reason kept, and counts quorum redeliveries', async () => {
      const { queue, producer, idem, settled, watch } = await rig('quorum')
      const seen: number[] = []
      const sub = watch(
        await consumeAmqp({
          client: connection,
          queue,
          retry: { delayTiers: TIERS },
          idem,
          maxAttempts: 3,
          backoff: () => 50,
          handler: (payload: { poison: boolean }, ctx) => {
            if (!payload.poison) return effects.record(ctx.key)
            seen.push(ctx.delivery.deliveryCount)
            throw new Error('card number rejected by the acquirer')
          },
        }),
      )
      await producer.publish({ id: `${queue}:poison`, payload: { poison: true }, headers: { tenant: 't9' } })
      await producer.publish({ id: `${queue}:fine`, payload: { poison: false } })
      await until(() => settled.some((r) => r.outcome === 'dead_lettered'), 'the dead-letter')
      await sub.close()
      await producer.close()

      expect(seen).toEqual([1, 2, 3])
      expect(settled.filter((r) => r.outcome === 'retried')).toHaveLength(2)
      const [dead, ...more] = await drainQueue(connection, `${queue}.idem.dlq`)
      expect(more).toHaveLength(0)
      expect(dead?.properties.messageId).toBe(`${queue}:poison`)
      expect(JSON.parse(dead?.content.toString() ?? '')).toEqual({ poison: true })
      expect(dead?.properties.headers).toMatchObject({
        [IdemHeader.DEAD_LETTER_REASON]: expect.stringContaining('card number rejected by the acquirer'),
        [IdemHeader.DEAD_LETTER_QUEUE]: queue,
        [IdemHeader.DELIVERIES]: 3,
        tenant: 't9',
      })
      expect(effects.counts().get(`${queue}:fine`)).toBe(1)
      expect(await queueDepth(connection, queue)).toBe(0)
    })

    it('retries by requeue with x-delivery-count on a quorum queue, then runs the message once', async () => {
      const { queue, producer, idem, settled, watch } = await rig('quorum')
      const seen: number[] = []
      const sub = watch(
        await consumeAmqp({
          client: connection,
          queue,
          retry: 'requeue',
          idem,
          backoff: () => 100,
          handler: (_payload, ctx) => {
            seen.push(ctx.delivery.deliveryCount)
            if (seen.length < 3) throw new Error('flaky downstream')
            effects.record(ctx.key)
          },
        }),
      )
      await producer.publish({ id: `${queue}:flaky`, payload: {} })
      await until(() => settled.some((r) => r.outcome === 'executed'), 'the third attempt')
      await sub.close()
      await producer.close()

      expect(seen).toEqual([1, 2, 3])
      expect(effects.counts().get(`${queue}:flaky`)).toBe(1)
      expect(await queueDepth(connection, queue)).toBe(0)
    })

    it('dead-letters a message without a key or with an undecodable body, without running the handler', async () => {
      const { queue, producer, idem, watch } = await rig('classic')
      const errors: unknown[] = []
      let calls = 0
      const sub = watch(
        await consumeAmqp({
          client: connection,
          queue,
          onError: (e) => errors.push(e),
          idem,
          handler: () => calls++,
        }),
      )
      const raw = await connection.createConfirmChannel()
      raw.sendToQueue(queue, Buffer.from('{"no":"id"}'), { persistent: true })
      raw.sendToQueue(queue, Buffer.from('not json'), { persistent: true, messageId: `${queue}:garbled` })
      await raw.waitForConfirms()
      await raw.close()
      await until(() => sub.stats.rejected === 2, 'two rejected messages')
      await until(async () => (await queueDepth(connection, `${queue}.idem.dlq`)) === 2, 'two dead letters')
      await sub.close()
      await producer.close()

      const dead = await drainQueue(connection, `${queue}.idem.dlq`)
      const reasons = dead.map((m) => String(m.properties.headers?.[IdemHeader.DEAD_LETTER_REASON]))
      expect(reasons[0]).toMatch(/no usable idempotency key/)
      expect(reasons[1]).toMatch(/could not be decoded/)
      expect(dead[1]?.content.toString()).toBe('not json')
      expect(calls).toBe(0)
      expect(errors).toHaveLength(2)
    })

    it('in a batch where one message fails, does not redo the others', async () => {
      const { queue, producer, idem, settled, watch } = await rig('quorum')
      const runs = new Map<string, number>()
      const ids = Array.from({ length: 6 }, (_, i) => `${queue}:b${i}`)
      const failing = ids[3] as string
      const sub = watch(
        await consumeAmqp({
          client: connection,
          queue,
          batch: { size: ids.length, maxWait: 500 },
          retry: { delayTiers: TIERS },
          idem,
          backoff: () => 50,
          handler: (_payload, ctx) => {
            runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1)
            if (ctx.key === failing && runs.get(ctx.key) === 1) throw new Error('one bad apple')
            effects.record(ctx.key)
          },
        }),
      )
      for (const id of ids) await producer.publish({ id, payload: { id } })
      await until(() => settled.filter((r) => r.outcome === 'executed').length === ids.length, 'all executed')
      await sub.close()
      await producer.close()

      for (const id of ids) expect(runs.get(id), id).toBe(id === failing ? 2 : 1)
      for (const id of ids) expect(effects.counts().get(id), id).toBe(1)
      expect(settled.filter((r) => r.outcome === 'retried').map((r) => r.key)).toEqual([failing])
      expect(await queueDepth(connection, queue)).toBe(0)
    })

    it('survives a connection closed by the server: stale tags are never used, redeliveries are replayed', async () => {
      const { queue, producer, idem, settled, watch } = await rig('quorum')
      const recovering = await amqp.connect(AMQP_URL, {
        clientProperties: { connection_name: 'idem-amqp-drop-test' },
        recovery: { initialDelay: 200, maxDelay: 1000, waitForConnect: false },
      })
      const ports: number[] = []
      recovering.on('connect', (model: amqp.ChannelModel) => {
        ports.push((model.connection as unknown as { stream: { localPort: number } }).stream.localPort)
      })
      recovering.on('error', () => {})
      await recovering.waitForConnect()
      const hold = gate()
      let inHandler = 0
      const brokerErrors: unknown[] = []
      const ids = Array.from({ length: 20 }, (_, i) => `${queue}:m${i}`)
      const sub = watch(
        await consumeAmqp({
          client: recovering,
          queue,
          prefetch: 8,
          onError: () => {},
          idem,
          concurrency: 4,
          handler: async (_payload, ctx) => {
            inHandler++
            await hold.promise
            effects.record(ctx.key)
          },
        }),
      )
      sub.consumer.on('broker_error', (e) => brokerErrors.push(e))
      for (const id of ids) await producer.publish({ id, payload: {} })
      await until(() => inHandler >= 4, 'four handlers running')

      await closeConnectionFromServer(ports[0] as number)
      await until(() => ports.length >= 2 && sub.stats.channelsOpened >= 2, 'the reconnect and a new channel')
      hold.open()
      await until(() => settled.filter((r) => r.outcome === 'executed').length === ids.length, 'every message executed')
      await until(async () => (await queueDepth(connection, queue)) === 0, 'an empty queue')
      await sub.close()
      await recovering.close()
      await producer.close()

      for (const id of ids) expect(effects.counts().get(id), id).toBe(1)
      // The handlers that were running finished after their channel died: their acks were refused, not sent on the new channel.
      expect(brokerErrors.length).toBeGreaterThanOrEqual(4)
      expect(brokerErrors.every((e) => (e as { error: Error }).error.name === 'StaleDeliveryError')).toBe(true)
      expect(settled.filter((r) => r.outcome === 'replayed').length).toBeGreaterThanOrEqual(4)
    })
  })
}
