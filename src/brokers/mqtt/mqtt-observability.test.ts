// headers() of consumeMqtt's deliveries against the real Mosquitto: MQTT 5 user properties, a
// property given twice, and a message from an MQTT 3.1.1 publisher (no properties: `{}`). MQTT
// gives no backlog count: the handle has no lag().

import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  MOSQUITTO_PORT,
  mqttUrl,
  plainClient,
  sessionClient,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import { until } from '../../../test/support/until.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeMqtt } from './mqtt-consumer.js'
import { mqttProducer } from './mqtt-producer.js'

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('consumeMqtt: headers(), and no lag()', () => {
    const prefix = isolatedPrefix('observability')
    afterAll(cleanUp)

    it('gives the handler the user properties as strings, a repeated one joined, and {} for an MQTT 3.1.1 message', async () => {
      const topic = `${prefix}/headers`
      const seen = new Map<string, Readonly<Record<string, string | undefined>>>()
      let sameRecord = false
      const handle = await consumeMqtt<{ id: string }>({
        client: sessionClient(`${prefix}-headers`),
        topics: topic,
        deadLetter: { topic: `${topic}/dead`, client: await plainClient() },
        // The key from the user property, or from the payload for a 3.1.1 publisher (no properties).
        key: (packet) => {
          const property = packet.properties?.userProperties?.['idem-key']
          if (typeof property === 'string') return property
          return (JSON.parse(packet.payload.toString()) as { id: string }).id
        },
        idem: new Idempotency({ store: new MemoryStore() }),
        handler: (_payload, ctx) => {
          const headers = ctx.delivery.headers?.() ?? { missing: 'headers()' }
          sameRecord = ctx.delivery.headers?.() === headers
          seen.set(ctx.key, headers)
        },
      })
      expect(handle.lag).toBeUndefined()

      const producer = mqttProducer({ client: await plainClient(), topic })
      await producer.publish({
        id: 'traced',
        payload: { id: 'traced' },
        headers: { traceparent: TRACEPARENT, 'X-Other': 'v' },
      })
      const v5 = await plainClient()
      await v5.publishAsync(topic, JSON.stringify({ id: 'tagged' }), {
        qos: 1,
        properties: { userProperties: { 'idem-key': 'tagged', tag: ['a', 'b'] } },
      })
      const v311 = await mqtt.connectAsync(mqttUrl(), { protocolVersion: 4, reconnectPeriod: 0 })
      await v311.publishAsync(topic, JSON.stringify({ id: 'old-client' }), { qos: 1 })
      await v311.endAsync()
      await until('three messages handled', () => seen.size === 3)
      await handle.close()

      expect(seen.get('traced')).toEqual({ traceparent: TRACEPARENT, 'X-Other': 'v', 'idem-key': 'traced' })
      expect(seen.get('tagged')).toEqual({ 'idem-key': 'tagged', tag: 'a, b' })
      expect(seen.get('old-client')).toEqual({})
      expect(sameRecord).toBe(true)
    })
  })
}
