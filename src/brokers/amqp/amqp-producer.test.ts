import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import { AMQP_PORT, connect, declareQueue, drainQueue } from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import type { AmqpConfirmChannel } from './amqp-driver.js'
import { amqpProducer } from './amqp-producer.js'
import { AmqpPublishError } from './amqp-publish.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

if (await requireService('RabbitMQ', AMQP_PORT)) {
  describe('amqpProducer on RabbitMQ', () => {
    const queue = isolatedName('idem_amqp_producer')
    const exchange = `${queue}.unbound`
    let connection: amqp.ChannelModel
    let admin: amqp.Channel

    beforeAll(async () => {
      connection = await connect('idem-amqp-producer-test')
      admin = await connection.createChannel()
      await declareQueue(admin, queue, 'quorum')
      await admin.assertExchange(exchange, 'direct', { durable: false, autoDelete: false })
    })
    afterAll(async () => {
      await admin.deleteQueue(queue)
      await admin.deleteExchange(exchange)
      await connection.close()
    })

    it('publishes persistent JSON with a generated UUIDv7 messageId once the broker confirmed it', async () => {
      const producer = amqpProducer({ connection, routingKey: queue })
      await producer.publish({ payload: { amount: 42 } })
      await producer.close()
      const [got, ...rest] = await drainQueue(connection, queue)
      expect(rest).toHaveLength(0)
      expect(got?.properties.messageId).toMatch(UUID_V7)
      expect(got?.properties.deliveryMode).toBe(2)
      expect(got?.properties.contentType).toBe('application/json')
      expect(JSON.parse(got?.content.toString() ?? '')).toEqual({ amount: 42 })
    })

    it("keeps the caller's id and headers, on a confirm channel the caller owns", async () => {
      const channel = await connection.createConfirmChannel()
      const producer = amqpProducer({ channel })
      await producer.publish({ id: 'order-42:pay', destination: queue, payload: 'x', headers: { tenant: 't1' } })
      await producer.close()
      await channel.publish('', queue, Buffer.from('still open'), {}) // close() left the caller's channel open
      await channel.waitForConfirms()
      await channel.close()
      const got = await drainQueue(connection, queue)
      expect(got.map((m) => m.properties.messageId)).toEqual(['order-42:pay', undefined])
      expect(got[0]?.properties.headers).toMatchObject({ tenant: 't1' })
    })

    it('rejects an unroutable message (mandatory, returned) with its messageId, without retrying', async () => {
      const producer = amqpProducer({ connection, exchange, routingKey: 'nobody-listens', retries: 3 })
      const failure = await producer.publish({ id: 'lost-1', payload: 1 }).catch((e: unknown) => e)
      await producer.close()
      expect(failure).toBeInstanceOf(AmqpPublishError)
      expect(failure).toMatchObject({ reason: 'unroutable', messageId: 'lost-1' })
    })

    it('rejects when the exchange does not exist, then publishes on a reopened channel', async () => {
      const producer = amqpProducer({ connection, retries: 0 })
      const failure = await producer
        .publish({ id: 'x-1', exchange: `${queue}.missing`, destination: 'k', payload: 1 })
        .catch((e: unknown) => e)
      expect(failure).toMatchObject({ reason: 'channel-closed', messageId: 'x-1' })
      await producer.publish({ id: 'after-404', destination: queue, payload: 2 })
      await producer.close()
      expect((await drainQueue(connection, queue)).map((m) => m.properties.messageId)).toEqual(['after-404'])
    })

    it('publishes again with the same generated id after a lost confirm', async () => {
      const real = await connection.createConfirmChannel()
      // The first confirm never reaches the producer, as when the connection hiccups.
      let dropped = 0
      const lossy = new Proxy(real, {
        get(target, prop, receiver) {
          if (prop !== 'publish') return Reflect.get(target, prop, receiver)
          return (...args: Parameters<AmqpConfirmChannel['publish']>) => {
            const [ex, rk, content, options, callback] = args
            return target.publish(ex, rk, content, options, dropped++ === 0 ? () => {} : callback)
          }
        },
      })
      const producer = amqpProducer({
        channel: lossy,
        routingKey: queue,
        confirmTimeout: 300,
        retries: 1,
        retryDelayMs: 10,
      })
      await producer.publish({ payload: { n: 1 } })
      await real.close()
      const copies = await drainQueue(connection, queue)
      expect(copies).toHaveLength(2)
      expect(copies[0]?.properties.messageId).toMatch(UUID_V7)
      expect(copies[1]?.properties.messageId).toBe(copies[0]?.properties.messageId)
    })

    it('reports a confirm timeout with the id to publish again with', async () => {
      const real = await connection.createConfirmChannel()
      const silent = new Proxy(real, {
        get(target, prop, receiver) {
          if (prop !== 'publish') return Reflect.get(target, prop, receiver)
          return (...args: Parameters<AmqpConfirmChannel['publish']>) =>
            target.publish(args[0], args[1], args[2], args[3], () => {})
        },
      })
      const producer = amqpProducer({ channel: silent, routingKey: queue, confirmTimeout: 200, retries: 0 })
      const failure = await producer.publish({ id: 'slow-1', payload: 1 }).catch((e: unknown) => e)
      expect(failure).toMatchObject({ reason: 'timeout', messageId: 'slow-1' })
      await real.close()
      await drainQueue(connection, queue)
    })
  })
}
