// rocketMQProducer: every message carries its Idem key (property and message key), counts as sent
// only with the broker's receipt, and a send the broker refused rejects with
// PublishNotConfirmedError under the same id. Against the real broker (test/services/rocketmq.sh)
// and with a double for what the broker cannot be made to do.

import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { createTopics, quietLogger } from '../../../test/support/brokers/rocketmq/rocketmq.test-helper.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import { rocketMQProducer } from './rocketmq-producer.js'
import type { RocketMQOutgoingLike, RocketMQProducerLike } from './rocketmq-producer-driver.js'

const ENDPOINTS = SERVICES.RocketMQ.url
const TOPIC = 'IdemProducer'

describe('rocketMQProducer with a double', () => {
  const double = (fail = false) => {
    const sent: RocketMQOutgoingLike[] = []
    const client: RocketMQProducerLike = {
      async send(message) {
        if (fail) throw new Error('proxy unreachable')
        sent.push(message)
        return { messageId: `M${sent.length}` }
      },
      beginTransaction: () => {
        throw new Error('not used')
      },
    }
    return { client, sent }
  }

  it('puts the id in the idem-key property and the message keys, headers beside it', async () => {
    const { client, sent } = double()
    const producer = rocketMQProducer({ client, topic: 'orders', tag: 'created' })
    const receipt = await producer.send({ id: 'order-1', payload: { n: 1 }, headers: { traceparent: 't' } })
    expect(receipt).toEqual({ id: 'order-1', messageId: 'M1' })
    expect(sent[0]?.topic).toBe('orders')
    expect(sent[0]?.tag).toBe('created')
    expect(sent[0]?.keys).toEqual(['order-1'])
    expect(Object.fromEntries(sent[0]?.properties ?? [])).toEqual({ traceparent: 't', 'idem-key': 'order-1' })
    expect(JSON.parse(sent[0]?.body.toString() ?? '')).toEqual({ n: 1 })
  })

  it('generates an id once when none is given, and a destination overrides the topic', async () => {
    const { client, sent } = double()
    const producer = rocketMQProducer({ client, topic: 'orders' })
    const receipt = await producer.send({ payload: 1, destination: 'refunds' })
    expect(receipt.id).toMatch(/\S+/)
    expect(sent[0]?.properties?.get('idem-key')).toBe(receipt.id)
    expect(sent[0]?.topic).toBe('refunds')
  })

  it('rejects with PublishNotConfirmedError carrying the id when the broker did not confirm', async () => {
    const producer = rocketMQProducer({ client: double(true).client, topic: 'orders' })
    const error = await producer.send({ id: 'order-2', payload: 1 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishNotConfirmedError)
    expect((error as PublishNotConfirmedError).messageId).toBe('order-2')
  })

  it('refuses bad options and bad messages with a clear error', async () => {
    expect(() => rocketMQProducer({ client: {} as never })).toThrow(/a started RocketMQ Producer/)
    expect(() => rocketMQProducer(undefined as never)).toThrow(/needs \{ client \}/)
    const producer = rocketMQProducer({ client: double().client })
    await expect(producer.send({ id: 'x', payload: 1 })).rejects.toThrow(/no destination and no default topic/)
    await expect(producer.send({ id: 'bad key\n', payload: 1, destination: 't' })).rejects.toThrow(/key/i)
    await expect(producer.send({ id: 'y', payload: undefined, destination: 't' })).rejects.toThrow(/JSON/)
  })

  it('shuts down a client it made, never one it was given', async () => {
    let shut = 0
    const made = { ...double().client, shutdown: async () => void shut++ }
    await rocketMQProducer({ client: made, topic: 't' }).close()
    expect(shut).toBe(0)
    const owned = rocketMQProducer({ client: async () => made, topic: 't' })
    await owned.send({ id: 'z', payload: 1 })
    await owned.close()
    expect(shut).toBe(1)
  })
})

if (await requireService('RocketMQ', SERVICES.RocketMQ.port)) {
  describe('rocketMQProducer (real broker)', () => {
    const tag = isolatedName('p')
    let client: Producer
    let consumer: SimpleConsumer
    beforeAll(async () => {
      await createTopics(TOPIC)
      client = new Producer({ endpoints: ENDPOINTS, namespace: '', logger: quietLogger })
      await client.startup()
      consumer = new SimpleConsumer({
        endpoints: ENDPOINTS,
        namespace: '',
        consumerGroup: isolatedName('producer'),
        subscriptions: new Map([[TOPIC, tag]]),
        awaitDuration: 3000,
        logger: quietLogger,
      })
      await consumer.startup()
    }, 60_000)
    afterAll(async () => {
      await consumer?.shutdown()
      await client?.shutdown()
    })

    it('a retried send stores a second copy under the same idem-key, for the consumer to recognise', async () => {
      const producer = rocketMQProducer({ client, topic: TOPIC, tag })
      const first = await producer.send({ id: 'order-42', payload: { total: 42 } })
      const second = await producer.send({ id: 'order-42', payload: { total: 42 } })
      expect(second.id).toBe(first.id)
      expect(second.messageId).not.toBe(first.messageId)
      const seen: { key: string | undefined; keys: string[] }[] = []
      for (let i = 0; i < 10 && seen.length < 2; i++) {
        for (const message of await consumer.receive(16, 10_000)) {
          seen.push({ key: message.properties.get('idem-key'), keys: message.keys })
          await consumer.ack(message)
        }
      }
      expect(seen).toEqual([
        { key: 'order-42', keys: ['order-42'] },
        { key: 'order-42', keys: ['order-42'] },
      ])
    }, 60_000)

    it('a topic the broker does not have rejects with PublishNotConfirmedError', async () => {
      const producer = rocketMQProducer({ client, topic: isolatedName('NoSuchTopic') })
      await expect(producer.send({ id: 'lost-1', payload: 1 })).rejects.toBeInstanceOf(PublishNotConfirmedError)
    }, 30_000)
  })
}
