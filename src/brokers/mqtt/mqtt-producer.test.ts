import { afterAll, describe, expect, it, vi } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  MOSQUITTO_PORT,
  plainClient,
  record,
  userProperty,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import { ErrorCode } from '../../errors.js'
import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { MqttPublisherClient, MqttPublishPacket } from './mqtt-client.js'
import { mqttProducer } from './mqtt-producer.js'
import { MqttPublishError } from './publish-confirmed.js'

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('mqttProducer on Mosquitto', () => {
    const prefix = isolatedPrefix('producer')
    afterAll(cleanUp)

    it('publishes the id as the idem-key user property, with headers and a JSON payload, at QoS 1 and 2', async () => {
      const topic = `${prefix}/orders`
      const recorder = await record(topic)
      const producer = mqttProducer({ client: await plainClient(), topic })
      await producer.publish({
        id: 'order-1',
        payload: { amount: 10 },
        headers: { tenant: 'acme', 'idem-key': 'spoof' },
      })
      await mqttProducer({ client: await plainClient(), qos: 2 }).publish({
        id: 'order-2',
        payload: [1],
        destination: topic,
      })
      const [first, second] = (await recorder.waitFor(2)) as [MqttPublishPacket, MqttPublishPacket]
      expect(userProperty(first, 'idem-key')).toBe('order-1')
      expect(userProperty(first, 'tenant')).toBe('acme')
      expect(first.properties?.contentType).toBe('application/json')
      expect(JSON.parse(first.payload.toString())).toEqual({ amount: 10 })
      expect(userProperty(second, 'idem-key')).toBe('order-2')
      expect(second.topic).toBe(topic)
    })

    it('resolves only once the broker confirmed the publish', async () => {
      const client = await plainClient()
      const confirmed: string[] = []
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'puback') confirmed.push('puback')
      })
      await mqttProducer({ client: client, topic: `${prefix}/confirm` }).publish({ id: 'c-1', payload: 1 })
      expect(confirmed).toEqual(['puback'])
    })

    it('rejects when no subscription matches and the message must reach someone (reason code 16)', async () => {
      const producer = mqttProducer({ client: await plainClient(), topic: `${prefix}/nobody`, requireSubscriber: true })
      const error = await producer.publish({ id: 'lost-1', payload: 1 }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MqttPublishError)
      expect((error as MqttPublishError).reasonCode).toBe(16)
      // Without the option, a message nobody subscribed to is accepted, as MQTT allows.
      await mqttProducer({ client: await plainClient(), topic: `${prefix}/nobody` }).publish({
        id: 'lost-2',
        payload: 1,
      })
    })

    it('rejects invalid ids and messages without a topic before publishing', async () => {
      const producer = mqttProducer({ client: await plainClient() })
      await expect(producer.publish({ id: 'ok', payload: 1 })).rejects.toThrow(/no destination/)
      await expect(producer.publish({ id: '', payload: 1, destination: `${prefix}/x` })).rejects.toThrow(/1 to 255/)
    })

    it('rejects when no confirmation arrives in time', async () => {
      const silent: MqttPublisherClient = { publishAsync: () => new Promise(() => {}), on: () => undefined }
      const producer = mqttProducer({ client: silent, topic: 't', confirmTimeout: 50 })
      await expect(producer.publish({ id: 'slow', payload: 1 })).rejects.toThrow(/no confirmation/)
    })
  })
}

/** A client whose every publish is confirmed at once (packet id 1), and which records its topics. */
function fakeClient() {
  const topics: string[] = []
  return {
    topics,
    ended: 0,
    async publishAsync(topic: string) {
      topics.push(topic)
      return { messageId: 1 }
    },
    on: () => undefined,
    async endAsync() {
      this.ended++
    },
  }
}

describe('mqttProducer construction', () => {
  it('takes the client in its options; the old (client, options) form warns once', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const client = fakeClient()
      await mqttProducer({ client, topic: 'a' }).publish({ id: 'n-1', payload: 1 })
      await mqttProducer(client, { topic: 'b' }).publish({ id: 'o-1', payload: 1 })
      await mqttProducer(client).publish({ id: 'o-2', payload: 1, destination: 'c' })
      expect(client.topics).toEqual(['a', 'b', 'c'])
      expect(warn).toHaveBeenCalledTimes(1)
      expect(warn.mock.calls[0]?.[0]).toMatch(
        /mqttProducer\(client, options\) is deprecated: use mqttProducer\(\{ client/,
      )
    } finally {
      warn.mockRestore()
    }
  })

  it('ends a client made by its factory in close(), and never one it was given', async () => {
    const given = fakeClient()
    const producer = mqttProducer({ client: given, topic: 't' })
    await producer.publish({ id: 'g-1', payload: 1 })
    await producer.close()
    expect(given.ended).toBe(0)
    const made = fakeClient()
    const factory = vi.fn(() => made)
    const owning = mqttProducer({ client: factory, topic: 't' })
    await owning.publish({ id: 'm-1', payload: 1 })
    await owning.publish({ id: 'm-2', payload: 1 })
    await owning.close()
    expect([factory.mock.calls.length, made.ended]).toEqual([1, 1])
    await expect(owning.publish({ id: 'm-3', payload: 1 })).rejects.toBeInstanceOf(PublishNotConfirmedError)
  })

  it('refuses a missing client with a TypeError that names the option', () => {
    expect(() => mqttProducer({} as never)).toThrow(/mqttProducer needs \{ client \}/)
  })

  it('rejects an unconfirmed publish with an MqttPublishError: PUBLISH_NOT_CONFIRMED, with the message id', async () => {
    const silent: MqttPublisherClient = { publishAsync: () => new Promise(() => {}), on: () => undefined }
    const error = await mqttProducer({ client: silent, topic: 't', confirmTimeout: '20ms' })
      .publish({ id: 'slow-2', payload: 1 })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MqttPublishError)
    expect(error).toBeInstanceOf(PublishNotConfirmedError)
    expect(error).toMatchObject({ code: ErrorCode.PUBLISH_NOT_CONFIRMED, messageId: 'slow-2' })
  })
})
