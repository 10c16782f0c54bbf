// consumeMqtt: an MQTT 5 persistent-session subscriber whose PUBACK (or PUBREC) is sent only after
// Idem stored the message's outcome. The broker keeps what was not acknowledged and sends it again,
// flagged dup, when the same client id reconnects; Idem recognises the key and does not redo it.

import { decodeJson } from '../../consumer/decode-json.js'
import {
  type ConsumerHandle,
  type ConsumerSource,
  type ConsumerStats,
  consumerHandle,
  resolveConsumer,
} from '../../consumer/handle.js'
import { StaleDeliveryError } from '../../consumer/stale-delivery.js'
import type { Delivery } from '../../consumer/types.js'
import { type Duration, toMs } from '../../contract/duration.js'
import { messageOf } from '../../errors.js'
import { lazyHeaders } from '../header-record.js'
import { AckGate, type HeldPublish } from './held-publish.js'
import type { MqttAckCallback, MqttConsumerClient, MqttPublisherClient, MqttPublishPacket } from './mqtt-client.js'
import {
  DeliveryCounts,
  deadLetterOf,
  keyOf,
  type MqttKeySource,
  payloadBuffer,
  userPropertyEntries,
} from './mqtt-message.js'
import { DEFAULT_KEY_PROPERTY } from './mqtt-producer.js'
import { publishConfirmed } from './publish-confirmed.js'
import { connectSession } from './session-connect.js'
import { topicMatches, validateFilter } from './topic-filter.js'

export interface MqttDeadLetterOptions {
  /** Where dead letters go, with the reason in the `idem-dead-letter-reason` user property. */
  topic: string
  /**
   * A second, connected client to publish them on. Not the consumer's own: mqtt.js reads nothing
   * from a connection while one of its PUBLISHes is held, so the dead letter's PUBACK would never
   * be seen there.
   */
  client: MqttPublisherClient
  /**
   * Treat "no subscription matches the dead-letter topic" (PUBACK reason 16: the broker dropped it)
   * as a failure, and keep the message instead of acknowledging it. Default true.
   */
  requireSubscriber?: boolean
  /** How long to wait for the dead letter's PUBACK. Default 30 s. */
  confirmTimeout?: Duration
}

/** The MQTT side of consumeMqtt's options. */
export interface MqttSourceOptions<P = unknown> {
  /**
   * A dedicated client created with `mqttSessionOptions(…)`, not yet connected: consumeMqtt connects
   * it, and `close()` disconnects it (the session stays on the broker).
   */
  client: MqttConsumerClient
  /** Topic filters (`+`, `#` and `$share/<group>/…` allowed). Their subscriptions live in the session. */
  topics: string | readonly string[]
  /** Subscription QoS: 1 (default) or 2. A message published at QoS 0 arrives at QoS 0 and has no ack to hold. */
  qos?: 1 | 2
  deadLetter: MqttDeadLetterOptions
  /** Where the key is: a user property name (default `idem-key`) or a function of the packet. */
  key?: MqttKeySource
  /** Payload decoding. Default: JSON in strict UTF-8 (`decodeJson`). A payload that fails to decode is dead-lettered with the reason. */
  decode?: (payload: Buffer, packet: MqttPublishPacket) => P
  /**
   * Other subscription options. Default retain handling 1: retained messages are sent only when the
   * subscription is new, not again at every start (they would be deduplicated, but why send them).
   */
  subscribe?: { nl?: boolean; rap?: boolean; rh?: number }
  /** How long to wait for the first connection. Default 30 s. */
  connectTimeout?: Duration
}

/**
 * consumeMqtt's options: the MQTT ones and, flat beside them, the consumer core's (`{ idem, handler }`
 * or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a ready-made `consumer`.
 */
export type ConsumeMqttOptions<P = unknown, Tx = unknown> = MqttSourceOptions<P> & ConsumerSource<P, Tx>

/** @deprecated Use `ConsumerHandle` (from `idem/consumer`). */
export type MqttConsumerHandle<P = unknown, Tx = unknown> = ConsumerHandle<P, Tx>

const DEAD_LETTER_RETRY_MAX_MS = 30_000

/**
 * Subscribe a persistent MQTT 5 session and hand its messages to the idempotent consumer: the
 * PUBACK (or PUBREC) of each is sent only once Idem stored its outcome. Resolves once subscribed.
 *
 * @example
 * ```ts
 * import mqtt from 'mqtt'
 * import { consumeMqtt, mqttSessionOptions } from 'idem/mqtt'
 *
 * const client = mqtt.connect('mqtt://localhost', mqttSessionOptions({ clientId: 'billing-1' }))
 * const orders = await consumeMqtt<Order>({
 *   client,
 *   topics: 'orders/#',
 *   deadLetter: { topic: 'orders/dead', client: await mqtt.connectAsync('mqtt://localhost') },
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 *   on: { settled: (result) => console.log(result.key, result.outcome) },
 * })
 * // on shutdown (disconnects `client`; the session keeps what is unacknowledged):
 * await orders.close()
 * ```
 */
export async function consumeMqtt<P = unknown, Tx = unknown>(
  options: ConsumeMqttOptions<P, Tx>,
): Promise<ConsumerHandle<P, Tx>> {
  if (options?.client === undefined) {
    throw new TypeError('consumeMqtt needs client: an mqtt.js client made with mqttSessionOptions(…)')
  }
  const { client } = options
  const filters = (typeof options.topics === 'string' ? [options.topics] : [...options.topics]).map(validateFilter)
  if (filters.length === 0) throw new TypeError('consumeMqtt needs at least one topic filter')
  const qos = options.qos ?? 1
  if (qos !== 1 && qos !== 2) throw new RangeError(`consumeMqtt subscribes at QoS 1 or 2, got ${String(qos)}`)
  const deadLetter = options.deadLetter
  if (deadLetter?.topic === undefined || deadLetter.client === undefined) {
    throw new TypeError('consumeMqtt needs deadLetter: { topic, client } for messages it cannot handle')
  }
  if ((deadLetter.client as unknown) === client) {
    throw new TypeError(
      "consumeMqtt: the dead-letter client must not be the consumer's own client (see deadLetter.client)",
    )
  }
  const confirm = {
    requireSubscriber: deadLetter.requireSubscriber ?? true,
    timeoutMs: deadLetter.confirmTimeout === undefined ? 30_000 : toMs(deadLetter.confirmTimeout, 'confirmTimeout'),
  }
  const keySource = options.key ?? DEFAULT_KEY_PROPERTY
  const decode = options.decode ?? (decodeJson as (payload: Buffer) => P)
  const { core } = resolveConsumer(options, 'consumeMqtt')
  const stats: ConsumerStats = { rejected: 0 }

  const gate = new AckGate(client)
  const counts = new DeliveryCounts()
  const timers = new Set<NodeJS.Timeout>()
  let closing = false
  const ours = (topic: string) => filters.some((filter) => topicMatches(filter, topic))

  /** Run `fn` after `delayMs` unless the held message went stale (the broker resends it) or we close. */
  const later = (held: HeldPublish, delayMs: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (held.live && !closing) fn()
    }, delayMs)
    timers.add(timer)
  }

  /** Publish the dead letter (confirmed), then acknowledge the original. Retried in the background on failure. */
  const park = async (held: HeldPublish, reason: string, key: string | undefined, attempt = 1): Promise<void> => {
    const letter = deadLetterOf(held.packet, reason)
    try {
      await publishConfirmed(deadLetter.client, deadLetter.topic, letter.payload, letter.options, confirm)
    } catch (error) {
      // Not acknowledged, so not lost; the connection stays blocked on it until it is parked.
      const delay = Math.min(DEAD_LETTER_RETRY_MAX_MS, 500 * 2 ** attempt)
      later(held, delay, () => void park(held, reason, key, attempt + 1).catch(() => {}))
      throw error
    }
    if (key !== undefined) counts.forget(key)
    if (!held.release()) throw staleError(held, key ?? '(no key)', 'deadLetter')
  }

  const dispatch = (held: HeldPublish, key: string, payload: P, deliveryCount: number) => {
    const delivery: Delivery<P> = {
      key,
      payload,
      deliveryCount,
      raw: held.packet,
      headers: lazyHeaders(() => userPropertyEntries(held.packet)),
      async ack() {
        counts.forget(key)
        if (!held.release()) throw staleError(held, key, 'ack')
      },
      async retry(delayMs) {
        // MQTT has no delayed redelivery and no negative ack: the message stays unacknowledged in
        // the session (the connection waits on it) and this process hands it to Idem again after
        // the delay. If the connection drops first, or we close, the broker sends it again instead.
        if (!held.live || closing || core.closing) return
        later(held, delayMs, () => dispatch(held, key, payload, counts.again(key)))
      },
      deadLetter: (reason) => park(held, reason, key),
    }
    void core.handle(delivery)
  }

  const receive = (packet: MqttPublishPacket, done: MqttAckCallback | undefined) => {
    const held = gate.hold(packet, done)
    // After close(): never handled, never acknowledged; the session keeps it for the next consumer.
    if (closing) return
    const found = keyOf(packet, keySource)
    if ('reason' in found) {
      stats.rejected++
      return void park(held, found.reason, undefined).catch(() => {})
    }
    let payload: P
    try {
      payload = decode(payloadBuffer(packet), packet)
    } catch (error) {
      const reason = `cannot decode the payload: ${messageOf(error)}`
      stats.rejected++
      return void park(held, reason, found.key).catch(() => {})
    }
    dispatch(held, found.key, payload, counts.arrived(found.key, packet.dup))
  }

  // mqtt.js calls this for every QoS 1/2 PUBLISH and sends the PUBACK/PUBREC when `done` is called.
  const previous = client.options.customHandleAcks
  const onAck = (topic: string, message: Buffer, packet: MqttPublishPacket, done: MqttAckCallback) => {
    if (!ours(topic)) return previous === undefined ? done(0) : previous(topic, message, packet, done)
    receive(packet, done)
  }
  // QoS 0 messages bypass the hook: at most once by the publisher's choice, deduplicated all the same.
  const onMessage = (topic: string, _payload: Buffer, packet: MqttPublishPacket) => {
    if (packet.qos === 0 && ours(topic)) receive(packet, undefined)
  }
  const onClose = () => gate.connectionClosed()

  client.options.customHandleAcks = onAck
  client.on('message', onMessage)
  client.on('close', onClose)
  const detach = () => {
    client.options.customHandleAcks = previous
    client.removeListener('message', onMessage)
    client.removeListener('close', onClose)
  }
  const connectTimeoutMs =
    options.connectTimeout === undefined ? 30_000 : toMs(options.connectTimeout, 'connectTimeout')
  try {
    await connectSession(client, filters, { qos, rh: 1, ...options.subscribe }, connectTimeoutMs)
  } catch (error) {
    detach()
    await client.endAsync(true).catch(() => {})
    throw error
  }

  let stopped!: () => void
  const done = new Promise<void>((resolve) => {
    stopped = resolve
  })
  const close = async () => {
    closing = true
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
    await core.close()
    gate.stop()
    detach()
    // A DISCONNECT, not a dropped socket: the session (expiry > 0) keeps whatever is unacknowledged.
    await client.endAsync()
  }
  return consumerHandle(core, stats, { close: () => close().finally(stopped), done })
}

function staleError(held: HeldPublish, key: string, operation: string): StaleDeliveryError {
  const { messageId, topic } = held.packet
  return new StaleDeliveryError(
    key,
    operation,
    `MQTT message ${messageId ?? '?'} on ${topic} lost its connection, and the broker sends it again on the next one`,
  )
}
