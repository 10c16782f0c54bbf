// A broker restart (on a private Mosquitto with persistence: the shared one is never restarted):
// the session and its unacknowledged message survive, the consumer reconnects with the same client
// id, and the message being handled when the broker went away is not run a second time.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../../test/services.js'
import {
  cleanUp,
  isolatedPrefix,
  plainClient,
  sessionClient,
  until,
} from '../../../test/support/brokers/mqtt/mqtt.test-helper.js'
import {
  type PrivateMosquitto,
  startPrivateMosquitto,
} from '../../../test/support/brokers/mqtt/private-mosquitto.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { consumeMqtt } from './mqtt-consumer.js'
import { mqttProducer } from './mqtt-producer.js'

async function mosquittoInstalled(): Promise<boolean> {
  try {
    await promisify(execFile)('mosquitto', ['-h'], { timeout: 5000 })
    return true
  } catch (error) {
    // `mosquitto -h` prints its usage and exits with 3.
    if ((error as { code?: unknown }).code === 3) return true
    reportMissing(
      'MQTT broker restart',
      `mosquitto cannot be run: ${(error as Error).message}`,
      'can start its own Mosquitto',
    )
    return false
  }
}

if (await mosquittoInstalled()) {
  describe('consumeMqtt across a restart of the broker', () => {
    const prefix = isolatedPrefix('restart')
    let broker: PrivateMosquitto | undefined
    afterAll(async () => {
      await cleanUp()
      await broker?.dispose()
    })

    it('resumes the persisted session and does not run the interrupted message again', async () => {
      broker = await startPrivateMosquitto()
      const { port } = broker
      const topic = `${prefix}/orders`
      const effects = new Map<string, number>()
      let started = false
      let release!: () => void
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      const client = sessionClient(`${prefix}-consumer`, port)
      let connects = 0
      client.on('connect', () => connects++)
      const outcomes: string[] = []
      const handle = await consumeMqtt<{ n: number }>({
        client,
        topics: topic,
        idem: new Idempotency({ store: new MemoryStore() }),
        handler: async (_order, ctx) => {
          if (ctx.key === 'm1' && !started) {
            started = true
            await held
          }
          effects.set(ctx.key, (effects.get(ctx.key) ?? 0) + 1)
        },
        deadLetter: { topic: `${topic}/dead`, client: await plainClient(port), requireSubscriber: false },
      })
      handle.consumer.on('settled', ({ key, outcome }) => outcomes.push(`${key}:${outcome}`))
      const producer = mqttProducer({ client: await plainClient(port), topic })
      await producer.publish({ id: 'm1', payload: { n: 1 } })
      await producer.publish({ id: 'm2', payload: { n: 2 } })
      await until(() => started, 15_000, 'the handler of m1 to start')

      await broker.stop()
      await broker.start()
      await until(() => connects >= 2, 15_000, 'the consumer to reconnect')
      release()
      await until(() => outcomes.length >= 3, 15_000, 'm1 twice and m2')
      expect(Object.fromEntries(effects)).toEqual({ m1: 1, m2: 1 })
      expect(outcomes).toEqual(['m1:executed', 'm1:replayed', 'm2:executed'])
      await handle.close()
    })
  })
}
