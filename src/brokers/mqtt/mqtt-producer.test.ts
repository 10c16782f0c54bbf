import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  MOSQUITTO_PORT,
  plainClient,
  record,
  userProperty,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
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
      const producer = mqttProducer(await plainClient(), { topic })
      await producer.publish({
        id: 'order-1',
        payload: { amount: 10 },
        headers: { tenant: 'acme', 'idem-key': 'spoof' },
      })
      await mqttProducer(await plainClient(), { qos: 2 }).publish({ id: 'order-2', payload: [1], destination: topic })
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
      await mqttProducer(client, { topic: `${prefix}/confirm` }).publish({ id: 'c-1', payload: 1 })
      expect(confirmed).toEqual(['puback'])
    })

    it('rejects when no subscription matches and the message must reach someone (reason code 16)', async () => {
      const producer = mqttProducer(await plainClient(), { topic: `${prefix}/nobody`, requireSubscriber: true })
      const error = await producer.publish({ id: 'lost-1', payload: 1 }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MqttPublishError)
      expect((error as MqttPublishError).reasonCode).toBe(16)
      // Without the option, a message nobody subscribed to is accepted, as MQTT allows.
      await mqttProducer(await plainClient(), { topic: `${prefix}/nobody` }).publish({ id: 'lost-2', payload: 1 })
    })

    it('rejects invalid ids and messages without a topic before publishing', async () => {
      const producer = mqttProducer(await plainClient())
      await expect(producer.publish({ id: 'ok', payload: 1 })).rejects.toThrow(/no destination/)
      await expect(producer.publish({ id: '', payload: 1, destination: `${prefix}/x` })).rejects.toThrow(/1 to 255/)
    })

    it('rejects when no confirmation arrives in time', async () => {
      const silent: MqttPublisherClient = { publishAsync: () => new Promise(() => {}), on: () => undefined }
      const producer = mqttProducer(silent, { topic: 't', confirmTimeout: 50 })
      await expect(producer.publish({ id: 'slow', payload: 1 })).rejects.toThrow(/no confirmation/)
    })
  })
}
