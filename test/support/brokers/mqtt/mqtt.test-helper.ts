// What the MQTT tests share: clients on the local Mosquitto (127.0.0.1:1883), unique topics and
// client ids per test file, a recorder for dead-letter topics, and the removal of sessions left behind.

import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { MqttPublishPacket } from '../../../../src/brokers/mqtt/mqtt-client.js'
import { mqttSessionOptions } from '../../../../src/brokers/mqtt/session-options.js'
import { isolatedName } from '../../../services.js'

export const MOSQUITTO_PORT = 1883
export const mqttUrl = (port = MOSQUITTO_PORT) => `mqtt://127.0.0.1:${port}`

/** A prefix unique to this test file's process: topics and client ids start with it. */
export function isolatedPrefix(name: string): string {
  return isolatedName(`idem_${name}`)
}

const opened = new Set<MqttClient>()
const sessions = new Set<string>()

function track(client: MqttClient): MqttClient {
  // mqtt.js throws an 'error' event nobody listens to; tests see failures through their assertions.
  client.on('error', () => {})
  opened.add(client)
  return client
}

/** A plain connected client (clean session), for publishing and recording. */
export async function plainClient(port = MOSQUITTO_PORT, options: IClientOptions = {}): Promise<MqttClient> {
  return track(await mqtt.connectAsync(mqttUrl(port), { protocolVersion: 5, reconnectPeriod: 200, ...options }))
}

/** A consumer's client, not yet connected (consumeMqtt connects it), on a persistent session. */
export function sessionClient(clientId: string, port = MOSQUITTO_PORT, keepalive = 30): MqttClient {
  sessions.add(`${port}/${clientId}`)
  const options = mqttSessionOptions({ clientId, sessionExpiry: '10m', keepalive, reconnectPeriod: 200 })
  return track(mqtt.connect(mqttUrl(port), options))
}

/** Create the session and its subscription before anything is published (MQTT keeps nothing for unknown sessions). */
export async function createSession(clientId: string, topic: string, qos: 1 | 2 = 1, port = MOSQUITTO_PORT) {
  sessions.add(`${port}/${clientId}`)
  const client = await mqtt.connectAsync(mqttUrl(port), {
    ...mqttSessionOptions({ clientId, sessionExpiry: '10m' }),
    manualConnect: false,
    reconnectPeriod: 0,
  })
  await client.subscribeAsync(topic, { qos })
  await client.endAsync()
}

export interface Recorder {
  readonly messages: MqttPublishPacket[]
  /** Resolves once `count` messages arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<MqttPublishPacket[]>
}

/** Subscribe a plain client to `topic` and keep what arrives. */
export async function record(topic: string, port = MOSQUITTO_PORT): Promise<Recorder> {
  const client = await plainClient(port)
  const messages: MqttPublishPacket[] = []
  const waiters: (() => void)[] = []
  client.on('message', (_topic, _payload, packet) => {
    messages.push(packet as unknown as MqttPublishPacket)
    for (const wake of waiters.splice(0)) wake()
  })
  await client.subscribeAsync(topic, { qos: 1 })
  return {
    messages,
    waitFor: (count, timeoutMs = 15_000) => until(() => messages.length >= count, timeoutMs).then(() => messages),
  }
}

/** Poll `condition` until it holds; reject after `timeoutMs` (a generous bound, not a measurement). */
export async function until(condition: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export const userProperty = (packet: MqttPublishPacket, name: string) => packet.properties?.userProperties?.[name]

/** End every client and remove every session the file created (a clean start with expiry 0 discards it). */
export async function cleanUp(): Promise<void> {
  await Promise.all([...opened].map((client) => client.endAsync(true).catch(() => {})))
  opened.clear()
  await Promise.all(
    [...sessions].map(async (entry) => {
      const [port, clientId] = entry.split(/\/(.*)/s) as [string, string]
      try {
        const client = await mqtt.connectAsync(mqttUrl(Number(port)), {
          protocolVersion: 5,
          clientId,
          clean: true,
          reconnectPeriod: 0,
          connectTimeout: 2000,
          properties: { sessionExpiryInterval: 0 },
        })
        await client.endAsync()
      } catch {
        // The broker is gone (a private one already stopped): nothing left to remove.
      }
    }),
  )
  sessions.clear()
}
