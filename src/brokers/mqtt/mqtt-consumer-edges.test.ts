// consumeMqtt's edge cases on the real Mosquitto: messages it cannot key or decode, a dead-letter
// topic nobody listens to, QoS 0, shutdown, several sessions on a shared subscription, and clients
// it must refuse.

import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  MOSQUITTO_PORT,
  mqttUrl,
  plainClient,
  record,
  sessionClient,
  until,
  userProperty,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import {
  count,
  firstMessageOfSession,
  startConsumer,
} from '../../../test/support/brokers/mqtt/mqtt-consumer.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import type { MqttPublishPacket } from './mqtt-client.js'
import { consumeMqtt } from './mqtt-consumer.js'
import { REASON_PROPERTY } from './mqtt-message.js'
import { mqttProducer } from './mqtt-producer.js'

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('consumeMqtt edge cases on Mosquitto', () => {
    const prefix = isolatedPrefix('edges')
    afterAll(cleanUp)

    it('dead-letters messages without a key or with an undecodable payload, without running the handler', async () => {
      const runs: string[] = []
      const c = await startConsumer(prefix, 'undecodable', { handler: (_order, ctx) => void runs.push(ctx.key) })
      const raw = await plainClient()
      await raw.publishAsync(c.topic, '{"n":1}', { qos: 1 })
      await raw.publishAsync(c.topic, 'not json', { qos: 1, properties: { userProperties: { 'idem-key': 'k2' } } })
      await c.publish('k3')
      const letters = await c.deadLetters.waitFor(2)
      expect(letters.map((letter) => userProperty(letter, REASON_PROPERTY))).toEqual([
        expect.stringMatching(/no idempotency key: user property idem-key is missing/),
        expect.stringMatching(/cannot decode the payload/),
      ])
      expect(letters[1]?.payload.toString()).toBe('not json')
      await until(() => runs.length === 1, 15_000, 'k3')
      expect(runs).toEqual(['k3'])
      await c.close()
    })

    it('keeps a message whose dead letter the broker would drop, and parks it once someone listens', async () => {
      const c = await startConsumer(
        prefix,
        'nodlq',
        {
          maxAttempts: 1,
          handler: () => {
            throw new Error('always')
          },
        },
        { deadLetterSubscriber: false },
      )
      await c.publish('stuck')
      // No subscription matches the dead-letter topic: the broker answers "no matching subscribers"
      // and would drop it, so the message is not acknowledged.
      await until(() => c.brokerErrors.length > 0, 15_000, 'the refused dead letter')
      expect(c.brokerErrors[0]).toEqual({ key: 'stuck', operation: 'deadLetter' })
      const recorder = await record(`${c.topic}/dead`)
      const [letter] = (await recorder.waitFor(1)) as [MqttPublishPacket]
      expect(userProperty(letter, 'idem-key')).toBe('stuck')
      await c.close()
      await c.publish('sentinel')
      expect(userProperty(await firstMessageOfSession(c.clientId), 'idem-key')).toBe('sentinel')
    })

    it('handles messages published at QoS 0 (nothing to acknowledge) and deduplicates them too', async () => {
      const effects = new Map<string, number>()
      const c = await startConsumer(prefix, 'qos0', { handler: (_order, ctx) => void count(effects, ctx.key) })
      const raw = await plainClient()
      const properties = { userProperties: { 'idem-key': 'q0' } }
      await raw.publishAsync(c.topic, '{"n":1}', { qos: 0, properties })
      await raw.publishAsync(c.topic, '{"n":1}', { qos: 0, properties })
      await until(() => c.settled.length === 2, 15_000, 'two settled deliveries')
      expect(Object.fromEntries(effects)).toEqual({ q0: 1 })
      await c.close()
    })

    it('never acknowledges a message whose handler did not finish before close() gave up', async () => {
      let started = false
      const c = await startConsumer(prefix, 'shutdown', {
        shutdownTimeout: '300ms',
        handler: async (_order, ctx) => {
          started = true
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
          throw new Error('aborted by the shutdown')
        },
      })
      await c.publish('unfinished')
      await until(() => started, 15_000, 'the handler to start')
      await c.close()
      expect(c.settled).toEqual([expect.objectContaining({ key: 'unfinished', outcome: 'retried' })])
      // Still in the session, unacknowledged: the next connection of this client id is sent it first.
      expect(userProperty(await firstMessageOfSession(c.clientId), 'idem-key')).toBe('unfinished')
    })

    it('shares the work between sessions on a shared subscription, each message once', async () => {
      const topic = `${prefix}/shared`
      const store = new MemoryStore()
      const runs = new Map<string, number>()
      const byWorker: string[][] = [[], []]
      const handles = await Promise.all(
        [0, 1].map(async (worker) =>
          consumeMqtt<{ n: number }>({
            client: sessionClient(`${prefix}-shared-${worker}`),
            topics: `$share/billing/${topic}`,
            idem: new Idempotency({ store }),
            handler: (_order, ctx) => {
              count(runs, ctx.key)
              byWorker[worker]?.push(ctx.key)
            },
            deadLetter: { topic: `${topic}/dead`, client: await plainClient() },
          }),
        ),
      )
      const producer = mqttProducer({ client: await plainClient(), topic })
      for (let i = 0; i < 10; i++) await producer.publish({ id: `s${i}`, payload: { n: i } })
      await until(() => runs.size === 10, 15_000, 'ten messages')
      expect([...runs.values()].every((n) => n === 1)).toBe(true)
      expect(byWorker.every((keys) => keys.length > 0)).toBe(true)
      await Promise.all(handles.map((handle) => handle.close()))
    })

    it('refuses a client that could lose or already acknowledged session messages', async () => {
      const idem = new Idempotency({ store: new MemoryStore() })
      const base = {
        topics: `${prefix}/refused`,
        idem,
        handler: () => {},
        deadLetter: { topic: `${prefix}/refused/dead`, client: await plainClient() },
      }
      const connected = await plainClient(MOSQUITTO_PORT, {
        clientId: `${prefix}-connected`,
        clean: false,
        properties: { sessionExpiryInterval: 1 },
      })
      await expect(consumeMqtt({ ...base, client: connected })).rejects.toThrow(/must not be connected yet/)
      const clean = mqtt.connect(mqttUrl(), { protocolVersion: 5, manualConnect: true })
      await expect(consumeMqtt({ ...base, client: clean })).rejects.toThrow(
        /clean must be false.*sessionExpiryInterval/,
      )
      const own = sessionClient(`${prefix}-own`)
      await expect(
        consumeMqtt({ ...base, client: own, deadLetter: { topic: 'x', client: own as never } }),
      ).rejects.toThrow(/must not be the consumer's own client/)
    })
  })
}
