import type amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import { AMQP_PORT, connect, declareQueue, drainQueue } from '../../../test/support/brokers/amqp/amqp.test-helper.js'
import { ErrorCode, IdempotencyError } from '../../errors.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { AmqpConfirmChannel, AmqpConnection } from './amqp-driver.js'
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
      const producer = amqpProducer({ client: connection, routingKey: queue })
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
      const producer = amqpProducer({ client: channel })
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
      const producer = amqpProducer({ client: connection, exchange, routingKey: 'nobody-listens', retries: 3 })
      const failure = await producer.publish({ id: 'lost-1', payload: 1 }).catch((e: unknown) => e)
      await producer.close()
      expect(failure).toBeInstanceOf(AmqpPublishError)
      expect(failure).toMatchObject({ reason: 'unroutable', messageId: 'lost-1' })
    })

    it('rejects when the exchange does not exist, then publishes on a reopened channel', async () => {
      const producer = amqpProducer({ client: connection, retries: 0 })
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
        client: lossy,
        routingKey: queue,
        confirmTimeout: 300,
        retries: 1,
        retryDelay: 10,
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
      const producer = amqpProducer({ client: silent, routingKey: queue, confirmTimeout: 200, retries: 0 })
      const failure = await producer.publish({ id: 'slow-1', payload: 1 }).catch((e: unknown) => e)
      expect(failure).toMatchObject({ reason: 'timeout', messageId: 'slow-1' })
      await real.close()
      await drainQueue(connection, queue)
    })
  })
}

/** A confirm channel that confirms (or nacks) every publish at once, and records what it got. */
function fakeChannel(nack = false) {
  const published: string[] = []
  const channel = {
    published,
    closed: 0,
    publish(_ex: string, rk: string, _c: Buffer, _o: unknown, callback: (error: unknown, ok: unknown) => void) {
      published.push(rk)
      queueMicrotask(() => callback(nack ? new Error('message nacked') : null, undefined))
      return true
    },
    on: () => channel,
    once: () => channel,
    removeListener: () => channel,
    assertExchange: async () => undefined,
    assertQueue: async () => undefined,
    bindQueue: async () => undefined,
    async close() {
      channel.closed++
    },
  }
  return channel
}

function fakeConnection(channel = fakeChannel()) {
  return {
    channel,
    closed: 0,
    createChannel: async () => {
      throw new Error('not used by the producer')
    },
    async createConfirmChannel() {
      return channel as unknown as AmqpConfirmChannel
    },
    async close() {
      this.closed++
    },
  }
}

describe('amqpProducer construction', () => {
  it('takes the connection or a confirm channel as { client }, and leaves it open on close()', async () => {
    const connection = fakeConnection()
    const producer = amqpProducer({ client: connection as AmqpConnection, routingKey: 'q' })
    await producer.publish({ id: 'a-1', payload: 1 })
    await producer.close()
    expect(connection.channel.published).toEqual(['q'])
    expect([connection.channel.closed, connection.closed]).toEqual([1, 0]) // its own channel only
    const channel = fakeChannel()
    const onChannel = amqpProducer({ client: channel as unknown as AmqpConfirmChannel, routingKey: 'q' })
    await onChannel.publish({ id: 'a-2', payload: 1 })
    await onChannel.close()
    expect(channel.closed).toBe(0)
  })

  it('calls a factory on the first publish and closes what it made in close()', async () => {
    const connection = fakeConnection()
    const factory = vi.fn(async () => connection as AmqpConnection)
    const producer = amqpProducer({ client: factory, routingKey: 'q' })
    expect(factory).not.toHaveBeenCalled()
    await producer.publish({ id: 'f-1', payload: 1 })
    await producer.publish({ id: 'f-2', payload: 1 })
    await producer.close()
    expect(factory).toHaveBeenCalledTimes(1)
    expect([connection.channel.closed, connection.closed]).toEqual([1, 1])
  })

  it('keeps the old { connection } and { channel } options, with one deprecation warning each', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const connection = fakeConnection()
      for (let i = 0; i < 2; i++) {
        const producer = amqpProducer({ connection: connection as AmqpConnection, routingKey: 'q', retryDelayMs: 0 })
        await producer.publish({ id: `old-${i}`, payload: 1 })
        await producer.close()
      }
      amqpProducer({ channel: fakeChannel() as unknown as AmqpConfirmChannel })
      expect(connection.channel.published).toEqual(['q', 'q'])
      const codes = warn.mock.calls.map(([message, options]) => [String(message), (options as { code: string }).code])
      expect(codes).toEqual([
        [
          expect.stringMatching(/amqpProducer\(\{ connection \}\) is deprecated: use amqpProducer\(\{ client \}\)/),
          'IDEM_DEPRECATED',
        ],
        [expect.stringMatching(/retryDelayMs/), 'IDEM_DEPRECATED'],
        [expect.stringMatching(/amqpProducer\(\{ channel \}\)/), 'IDEM_DEPRECATED'],
      ])
    } finally {
      warn.mockRestore()
    }
  })

  it('refuses no client, two of them, or one that is neither a connection nor a channel', async () => {
    expect(() => amqpProducer({} as never)).toThrow(/needs exactly one \{ client \}/)
    const connection = fakeConnection() as AmqpConnection
    expect(() => amqpProducer({ client: connection, connection })).toThrow(TypeError)
    expect(() => amqpProducer({ client: {} as AmqpConnection })).toThrow(/client must be an amqplib connection/)
    const producer = amqpProducer({ client: async () => ({}) as AmqpConnection, routingKey: 'q' })
    await expect(producer.publish({ id: 'x', payload: 1 })).rejects.toThrow(TypeError)
    expect(() => amqpProducer({ client: connection, retryDelay: 'soon' })).toThrow(/retryDelay/)
  })

  it('rejects an unconfirmed publish with an AmqpPublishError that is a PublishNotConfirmedError', async () => {
    const producer = amqpProducer({
      client: fakeChannel(true) as unknown as AmqpConfirmChannel,
      routingKey: 'q',
      retries: 0,
    })
    const error = await producer.publish({ id: 'n-1', payload: 1 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AmqpPublishError)
    expect(error).toBeInstanceOf(PublishNotConfirmedError)
    expect(error).toBeInstanceOf(IdempotencyError)
    expect(error).toMatchObject({ code: ErrorCode.PUBLISH_NOT_CONFIRMED, reason: 'nacked', messageId: 'n-1' })
  })
})
