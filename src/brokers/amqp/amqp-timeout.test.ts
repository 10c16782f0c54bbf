import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, reportMissing, requireService } from '../../../test/services.js'
import {
  AMQP_PORT,
  connect,
  declareQueue,
  deleteQueueAndTopology,
  EffectLog,
  queueDepth,
  rabbitmqctlAvailable,
  until,
  withConsumerTimeout,
} from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import type { DeliveryResult } from '../../consumer/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { type AmqpSubscription, consumeAmqp } from './amqp-consumer.js'
import { amqpProducer } from './amqp-producer.js'

const TIERS = [200]
const LEASE = '1s'

if ((await requireService('RabbitMQ', AMQP_PORT)) && (await rabbitmqctlAvailable())) {
  describe('consumeAmqp with a handler longer than the lease and the consumer timeout', () => {
    let connection: amqp.ChannelModel
    let effects: EffectLog
    const queues: string[] = []

    beforeAll(async () => {
      connection = await connect('idem-amqp-timeout-test')
      effects = new EffectLog()
    })
    afterAll(async () => {
      for (const queue of queues) await deleteQueueAndTopology(connection, queue, TIERS)
      await connection.close()
      effects.close()
    })

    /** Two consumers of one queue sharing one store, as two processes would; the slow handler runs `ms`. */
    async function rig(ms: number) {
      const channel = await connection.createChannel()
      const queue = await declareQueue(channel, isolatedName('idem_amqp_slow'), 'quorum')
      await channel.close()
      queues.push(queue)
      const idem = new Idempotency({ store: new MemoryStore(), scope: 'amqp-slow', lease: LEASE })
      const runs: string[] = []
      const settled: DeliveryResult[] = []
      const brokerErrors: string[] = []
      const options = {
        client: connection,
        queue,
        retry: { delayTiers: TIERS },
        onError: () => {},
        idem,
        handler: async (_payload: unknown, ctx: { key: string }) => {
          runs.push(ctx.key)
          await new Promise((resolve) => setTimeout(resolve, ms))
          effects.record(ctx.key)
        },
      }
      const watch = (subscription: AmqpSubscription) => {
        subscription.consumer.on('settled', (r) => settled.push(r))
        subscription.consumer.on('broker_error', (e) => brokerErrors.push((e.error as Error).name))
        return subscription
      }
      return { queue, options, runs, settled, brokerErrors, watch }
    }

    it('survives the broker closing the channel at its consumer timeout: runs once, acks the redelivery', async () => {
      const { queue, options, runs, settled, brokerErrors, watch } = await rig(7000)
      // This consumer's channel gets a 3 s delivery_acknowledgement timeout from the broker.
      const shortened = await withConsumerTimeout(3000, () => consumeAmqp(options))
      const first = watch(shortened.value)
      try {
        const producer = amqpProducer({ client: connection, routingKey: queue })
        const key = `${queue}:slow`
        await producer.publish({ id: key, payload: {} })
        await producer.close()
        await until(() => runs.length === 1, 'the slow handler to start')
        const second = watch(await consumeAmqp(options))

        await until(() => settled.some((r) => r.outcome === 'replayed'), 'the redelivery replayed', 30_000)
        await until(async () => (await queueDepth(connection, queue)) === 0, 'an empty queue')
        await Promise.all([first.close(), second.close()])

        expect(first.stats.channelsOpened).toBeGreaterThanOrEqual(2) // the broker closed the first channel
        expect(runs).toEqual([key])
        expect(effects.counts().get(key)).toBe(1)
        expect(brokerErrors).toContain('StaleDeliveryError') // the slow handler's ack found its channel gone
        expect(settled.filter((r) => r.outcome === 'executed')).toHaveLength(1)
      } finally {
        await shortened.restore()
      }
    }, 40_000)

    it('hands a message back before a configured consumer timeout, keeping the channel, and runs it once', async () => {
      const { queue, options, runs, settled, watch } = await rig(4000)
      const first = watch(await consumeAmqp({ ...options, consumerTimeout: 2000 }))
      const producer = amqpProducer({ client: connection, routingKey: queue })
      const key = `${queue}:slow`
      await producer.publish({ id: key, payload: {} })
      await producer.close()
      await until(() => runs.length === 1, 'the slow handler to start')
      const second = watch(await consumeAmqp(options))

      await until(() => settled.some((r) => r.outcome === 'replayed'), 'the redelivery replayed', 30_000)
      await until(async () => (await queueDepth(connection, queue)) === 0, 'an empty queue')
      await Promise.all([first.close(), second.close()])

      expect(first.stats.handedBack).toBeGreaterThanOrEqual(1) // a redelivery queued behind the slow one may be handed back too
      expect(first.stats.channelsOpened).toBe(1)
      expect(runs).toEqual([key])
      expect(effects.counts().get(key)).toBe(1)
    }, 30_000)
  })
} else if (await requireService('RabbitMQ', AMQP_PORT)) {
  reportMissing(
    'consumeAmqp consumer timeout',
    'rabbitmqctl cannot reach the local RabbitMQ node (it is needed to shorten consumer_timeout)',
    'rabbitmqctl can reach the local node',
  )
}
