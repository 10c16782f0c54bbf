// One Pulsar message as the consumer core's Delivery: its key and payload, the broker's redelivery
// count, and ack / negative ack / copy-then-ack behind the core's verbs. Every verb goes out on the
// socket the message came in on: once that socket closed, the broker has already taken the message
// back (it is redelivered to the next consumer), so there is nothing left to acknowledge there.

import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import { type HeaderRecord, headerRecord } from '../header-record.js'
import type { DeadLetterCopy } from './pulsar-dead-letter.js'
import type { PulsarMessage, PulsarSocket } from './pulsar-driver.js'
import { messageIdKey, messageKey, type PulsarKeySource } from './pulsar-keys.js'

export interface DeliverySettings<P> {
  key: PulsarKeySource
  keyProperty: string
  /** `persistent://…` of the consumed topic, part of message id keys. */
  topic: string
  decode: (data: Uint8Array, message: PulsarMessage) => P
  deadLetter: DeadLetterCopy
  orderingKey?: (message: PulsarMessage) => string | undefined
}

export type Translation<P> =
  | { ok: true; delivery: Delivery<P> }
  /** A message the core cannot take (no usable key, undecodable): dead-letter it under `copyId`. */
  | { ok: false; copyId: string; reason: string }

/** Whether `frame` (parsed JSON from a consumer socket) is a message. */
export function isMessage(frame: unknown): frame is PulsarMessage {
  const m = frame as Partial<PulsarMessage> | null
  return m !== null && typeof m === 'object' && typeof m.messageId === 'string' && typeof m.payload === 'string'
}

export function toDelivery<P>(
  message: PulsarMessage,
  socket: PulsarSocket,
  settings: DeliverySettings<P>,
): Translation<P> {
  const fallback = messageIdKey(settings.topic, message.messageId)
  let key: string
  try {
    const found = messageKey(message, settings.key, settings.keyProperty, settings.topic)
    if (found === undefined) {
      return {
        ok: false,
        copyId: fallback,
        reason: `the message has no idempotency key (property ${settings.keyProperty})`,
      }
    }
    key = validateKey(found)
  } catch (error) {
    return { ok: false, copyId: fallback, reason: `the message has no usable idempotency key: ${messageOf(error)}` }
  }
  let payload: P
  try {
    payload = settings.decode(Buffer.from(message.payload, 'base64'), message)
  } catch (error) {
    return { ok: false, copyId: key, reason: `the payload could not be decoded: ${messageOf(error)}` }
  }
  return { ok: true, delivery: new PulsarDelivery(message, socket, key, payload, settings) }
}

/** Acknowledge `message` on `socket`. */
export function ack(socket: PulsarSocket, message: PulsarMessage): Promise<void> {
  return socket.send({ messageId: message.messageId })
}

/** Hand `message` back: the broker redelivers it after the subscription's negativeAckRedeliveryDelay. */
export function nack(socket: PulsarSocket, message: PulsarMessage): Promise<void> {
  return socket.send({ type: 'negativeAcknowledge', messageId: message.messageId })
}

/**
 * One message as a Delivery: a class with its verbs on the prototype rather than a literal of
 * closures, because the adapter makes one per message.
 */
class PulsarDelivery<P> implements Delivery<P> {
  readonly key: string
  readonly payload: P
  readonly deliveryCount: number
  readonly orderingKey: string
  readonly raw: PulsarMessage
  readonly #socket: PulsarSocket
  readonly #settings: DeliverySettings<P>
  #headers: HeaderRecord | undefined = undefined

  constructor(message: PulsarMessage, socket: PulsarSocket, key: string, payload: P, settings: DeliverySettings<P>) {
    this.key = key
    this.payload = payload
    // The frame is JSON from the network: a count that is not a whole number counts as none.
    const redeliveries = message.redeliveryCount
    this.deliveryCount =
      (Number.isSafeInteger(redeliveries) && (redeliveries as number) > 0 ? (redeliveries as number) : 0) + 1
    this.orderingKey = settings.orderingKey?.(message) ?? key
    this.raw = message
    this.#socket = socket
    this.#settings = settings
  }

  headers(): HeaderRecord {
    this.#headers ??= headerRecord(Object.entries(this.raw.properties ?? {}))
    return this.#headers
  }

  ack(): Promise<void> {
    return ack(this.#socket, this.raw)
  }

  /** A negative ack: Pulsar has no per-message delay, so `delayMs` is not used (see consumePulsar's retryDelay). */
  retry(_delayMs: number): Promise<void> {
    return nack(this.#socket, this.raw)
  }

  async deadLetter(reason: string): Promise<void> {
    await this.#settings.deadLetter(this.raw, this.key, reason)
    await ack(this.#socket, this.raw)
  }
}
