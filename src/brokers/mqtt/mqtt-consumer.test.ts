// consumeMqtt against the real Mosquitto: the scenarios every adapter is held to. MQTT has no batch
// delivery, no broker-side ack timeout and no negative ack, so two of them are adapted (each test
// says how). The process crash (SIGKILL) is in mqtt-crash.test.ts, a broker restart in
// mqtt-broker-restart.test.ts, edge cases in mqtt-consumer-edges.test.ts.

import type { Socket } from 'node:net'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  MOSQUITTO_PORT,
  mqttUrl,
  until,
  userProperty,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import {
  count,
  firstMessageOfSession,
  startConsumer,
} from '../../../test/support/brokers/mqtt/mqtt-consumer.test-helper.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import type { MqttPublishPacket } from './mqtt-client.js'
import { ORIGINAL_TOPIC_PROPERTY, REASON_PROPERTY } from './mqtt-message.js'

if (await requireService('Mosquitto', MOSQUITTO_PORT)) {
  describe('consumeMqtt on Mosquitto', () => {
    const prefix = isolatedPrefix('consumer')
    afterAll(cleanUp)

    it.each([1, 2] as const)('runs a message published twice with the same id once (QoS %i)', async (qos) => {
      const effects = new Map<string, number>()
      const c = await startConsumer(
        prefix,
        `dup${qos}`,
        { handler: (_order, ctx) => void count(effects, ctx.key) },
        { qos },
      )
      // The same id twice: a publisher retrying after a lost PUBACK.
      await c.publish('a')
      await c.publish('a')
      await c.publish('b')
      await until(() => c.settled.length === 3, 15_000, 'three settled deliveries')
      expect(Object.fromEntries(effects)).toEqual({ a: 1, b: 1 })
      expect(c.settled.map((s) => `${s.key}:${s.outcome}`)).toEqual(['a:executed', 'a:replayed', 'b:executed'])
      await c.close()
    })

    it('sends the PUBACK only after the outcome is stored', async () => {
      const log: string[] = []
      const store = new MemoryStore()
      const complete = store.complete.bind(store)
      store.complete = async (...args) => {
        log.push('storing')
        await new Promise((resolve) => setTimeout(resolve, 200))
        await complete(...args)
        log.push('stored')
      }
      const c = await startConsumer(prefix, 'order', { handler: () => {} }, { store })
      c.client.on('packetsend', (packet) => {
        if (packet.cmd === 'puback') log.push('puback')
      })
      await c.publish('o1')
      await until(() => log.includes('puback'), 15_000, 'the PUBACK')
      expect(log).toEqual(['storing', 'stored', 'puback'])
      await c.close()
    })

    it('resumes after the broker closes the connection mid-handler, without loss or a second run', async () => {
      const effects = new Map<string, number>()
      let release!: () => void
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      const c = await startConsumer(prefix, 'takeover', {
        handler: async (_order, ctx) => {
          if (ctx.key === 'm1' && !effects.has('m1-started')) {
            effects.set('m1-started', 1)
            await held
          }
          count(effects, ctx.key)
        },
      })
      await c.publish('m1')
      await until(() => effects.has('m1-started'), 15_000, 'the handler of m1 to start')
      // Server side: a second connection with the same client id makes Mosquitto close ours (session
      // takeover). It never acknowledges what it is sent, and leaves; the consumer reconnects.
      const intruder = mqtt.connect(mqttUrl(), {
        protocolVersion: 5,
        clientId: c.clientId,
        clean: false,
        properties: { sessionExpiryInterval: 600 },
        reconnectPeriod: 0,
        customHandleAcks: () => {},
      })
      intruder.on('error', () => {})
      await until(() => c.closes() >= 1, 15_000, 'Mosquitto to close the consumer connection')
      await intruder.endAsync(true)
      await c.publish('m2')
      release()
      await until(() => c.settled.filter((s) => s.key === 'm1').length === 2 && effects.has('m2'), 15_000, 'm1, m2')
      expect(effects.get('m1')).toBe(1)
      expect(effects.get('m2')).toBe(1)
      // The first delivery's ack was refused (its connection was gone); the copy the broker sent
      // again (dup) was recognised and acknowledged without running the handler.
      expect(c.brokerErrors).toContainEqual({ key: 'm1', operation: 'ack' })
      expect(c.settled.filter((s) => s.key === 'm1').map((s) => s.outcome)).toEqual(['executed', 'replayed'])
      expect(c.received.filter((r) => r.key === 'm1').map((r) => r.deliveryCount)).toEqual([1, 2])
      await c.close()
    })

    it('dead-letters a poison message after maxAttempts with its reason, and acknowledges it', async () => {
      const attempts: number[] = []
      const effects = new Map<string, number>()
      const c = await startConsumer(prefix, 'poison', {
        maxAttempts: 3,
        handler: (_order, ctx) => {
          if (ctx.key === 'poison') {
            attempts.push(ctx.delivery.deliveryCount)
            throw new Error('cannot charge a negative amount')
          }
          count(effects, ctx.key)
        },
      })
      await c.publish('poison', -5)
      await c.publish('fine')
      const [letter] = (await c.deadLetters.waitFor(1)) as [MqttPublishPacket]
      expect(attempts).toEqual([1, 2, 3])
      expect(userProperty(letter, REASON_PROPERTY)).toMatch(/cannot charge a negative amount/)
      expect(userProperty(letter, 'idem-key')).toBe('poison')
      expect(userProperty(letter, ORIGINAL_TOPIC_PROPERTY)).toBe(c.topic)
      expect(JSON.parse(letter.payload.toString())).toEqual({ n: -5 })
      await until(() => effects.has('fine'), 15_000, 'the next message')
      await c.close()

      // Acknowledged: once the session is resumed, the first message is one published later, not the poison.
      await c.publish('sentinel')
      const first = await firstMessageOfSession(c.clientId)
      expect(userProperty(first, 'idem-key')).toBe('sentinel')
    })

    // MQTT has no broker-side ack timeout: an unacknowledged message is only sent again after a
    // reconnect. The broker's timer here is the keepalive (the connection is dropped after 1.5 ×
    // keepalive without traffic), and mqtt.js reads nothing while a PUBLISH is held, PINGRESP
    // included. 2 s keepalive, 1 s lease, 4.5 s handler.
    it('runs a handler longer than the lease and the keepalive once, on the same connection', async () => {
      const runs: number[] = []
      const c = await startConsumer(
        prefix,
        'long',
        {
          lease: '1s',
          handler: async (_order, ctx) => {
            runs.push(ctx.delivery.deliveryCount)
            await new Promise((resolve) => setTimeout(resolve, 4500))
          },
        },
        { keepalive: 2 },
      )
      await c.publish('slow')
      await until(() => c.settled.length === 1, 15_000, 'the slow message')
      expect(runs).toEqual([1])
      expect(c.settled[0]?.outcome).toBe('executed')
      expect(c.closes()).toBe(0)
      await c.close()
    })

    // MQTT delivers one message at a time (no batch API), so "a batch" here is a burst of five: the
    // third fails, and the connection drops while it waits for its retry. The broker sends the
    // unacknowledged ones again; the two acknowledged before it are neither redelivered nor redone.
    it('does not redo the messages acknowledged before a failing one when the connection drops', async () => {
      const runs = new Map<string, number>()
      const c = await startConsumer(prefix, 'burst', {
        backoff: () => 1000,
        handler: (_order, ctx) => {
          count(runs, ctx.key)
          if (ctx.key === 'm3' && runs.get('m3') === 1) {
            setTimeout(() => (c.client.stream as unknown as Socket).destroy(), 50)
            throw new Error('transient failure')
          }
        },
      })
      for (const id of ['m1', 'm2', 'm3', 'm4', 'm5']) await c.publish(id)
      await until(() => c.settled.filter((s) => s.outcome === 'executed').length === 5, 15_000, 'five executed')
      expect(Object.fromEntries(runs)).toEqual({ m1: 1, m2: 1, m3: 2, m4: 1, m5: 1 })
      expect(c.closes()).toBeGreaterThanOrEqual(1)
      expect(c.received.filter((r) => r.key === 'm1' || r.key === 'm2')).toHaveLength(2)
      await c.close()
    })
  })
}
