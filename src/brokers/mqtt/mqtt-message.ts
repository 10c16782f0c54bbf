// From an MQTT PUBLISH to what Idem needs: the key (a user property set by the producer), the
// decoded payload, a delivery count, and the dead letter that carries the reason.

import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import type { MqttPublishOptions, MqttPublishPacket } from './mqtt-client.js'

/** The user property that names the key (default `idem-key`), or a function that finds it in the packet. */
export type MqttKeySource = string | ((packet: MqttPublishPacket) => string | undefined)

export const REASON_PROPERTY = 'idem-dead-letter-reason'
export const ORIGINAL_TOPIC_PROPERTY = 'idem-original-topic'
const MAX_REASON_LENGTH = 1024

/**
 * The key, or why there is none. There is no fallback on purpose: the packet id is reused as soon
 * as a message is acknowledged (and differs per subscriber), and a hash of the payload would merge
 * two genuine messages that happen to be equal.
 */
export function keyOf(packet: MqttPublishPacket, source: MqttKeySource): { key: string } | { reason: string } {
  let key: string | string[] | undefined
  try {
    key = typeof source === 'function' ? source(packet) : packet.properties?.userProperties?.[source]
  } catch (error) {
    return { reason: `the key function threw: ${messageOf(error)}` }
  }
  const name = typeof source === 'function' ? 'the key function' : `user property ${source}`
  if (key === undefined) return { reason: `no idempotency key: ${name} is missing` }
  if (Array.isArray(key)) {
    if (new Set(key).size !== 1) return { reason: `ambiguous idempotency key: ${name} is given ${key.length} times` }
    key = key[0] as string
  }
  try {
    return { key: validateKey(key) }
  } catch (error) {
    return { reason: `invalid idempotency key from ${name}: ${(error as Error).message}` }
  }
}

/**
 * The packet's MQTT 5 user properties as header entries, a name given more than once (mqtt.js
 * hands it as an array) once per value, in order. Names as sent: user property names are
 * case-sensitive UTF-8 strings. A packet without user properties (published by an MQTT 3.1.1
 * client, which has none, or by a v5 client that set none) has no entries: `headers()` is `{}`.
 */
export function* userPropertyEntries(packet: MqttPublishPacket): Iterable<readonly [string, string]> {
  for (const [name, value] of Object.entries(packet.properties?.userProperties ?? {})) {
    if (Array.isArray(value)) for (const one of value) yield [name, one]
    else yield [name, value]
  }
}

export function payloadBuffer(packet: MqttPublishPacket): Buffer {
  return typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
}

/**
 * Counts deliveries per key in this process. The broker keeps no count: `dup` only says "sent
 * before", so a message first seen with dup=1 counts as its second delivery, and a count kept here
 * is lost with the process. Bounded: keys never settled here (their connection dropped) age out.
 */
export class DeliveryCounts {
  private readonly counts = new Map<string, number>()

  constructor(private readonly max = 10_000) {}

  /** A PUBLISH for `key` arrived. */
  arrived(key: string, dup: boolean): number {
    return this.set(key, Math.max(this.counts.get(key) ?? 0, dup ? 1 : 0) + 1)
  }

  /** The same message is handed to Idem again (a retry served in this process). */
  again(key: string): number {
    return this.set(key, (this.counts.get(key) ?? 1) + 1)
  }

  forget(key: string): void {
    this.counts.delete(key)
  }

  private set(key: string, count: number): number {
    this.counts.delete(key)
    this.counts.set(key, count)
    if (this.counts.size > this.max) this.counts.delete(this.counts.keys().next().value as string)
    return count
  }
}

/** The dead letter: the original bytes and properties, plus the reason and the topic it came from. */
export function deadLetterOf(
  packet: MqttPublishPacket,
  reason: string,
): { payload: Buffer; options: MqttPublishOptions } {
  const original = packet.properties ?? {}
  const properties: MqttPublishOptions['properties'] = {
    userProperties: {
      ...original.userProperties,
      [REASON_PROPERTY]: reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH - 1)}…` : reason,
      [ORIGINAL_TOPIC_PROPERTY]: packet.topic,
    },
  }
  if (original.contentType !== undefined) properties.contentType = original.contentType
  if (original.payloadFormatIndicator !== undefined) properties.payloadFormatIndicator = original.payloadFormatIndicator
  if (original.correlationData !== undefined) properties.correlationData = original.correlationData
  if (original.responseTopic !== undefined) properties.responseTopic = original.responseTopic
  return { payload: payloadBuffer(packet), options: { qos: 1, properties } }
}
