// One RocketMQ message as the consumer core's Delivery: its key and payload, the broker's delivery
// attempt, and ack / changeInvisibleDuration(delay) / changeInvisibleDuration(invisibleDuration) /
// copy-then-ack behind the core's verbs.

import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import { type HeaderRecord, headerRecord } from '../header-record.js'
import type { MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
import type { DeadLetterFn } from './rocketmq-dead-letter.js'
import { messageKey, type RocketMQKeySource } from './rocketmq-keys.js'

/** The longest invisible duration the proxy accepts (12 h): longer retry delays are cut to it. */
export const MAX_INVISIBLE_MS = 12 * 3_600_000

export interface DeliverySettings<P, M extends MessageViewLike> {
  consumer: SimpleConsumerLike<M>
  key: RocketMQKeySource<M>
  keyProperty: string
  decode: (body: Buffer, message: M) => P
  /** The invisible duration asked on receive, in ms: what each extend asks again. */
  invisibleMs: number
  deadLetter: DeadLetterFn<M>
  orderingKey?: (message: M) => string | undefined
}

export type Translation<P> =
  | { ok: true; delivery: Delivery<P> }
  /** A message the core cannot take (no usable key, undecodable): dead-letter it under `copyKey`. */
  | { ok: false; copyKey: string; reason: string }

export function toDelivery<P, M extends MessageViewLike>(message: M, settings: DeliverySettings<P, M>): Translation<P> {
  let key: string
  try {
    const found = messageKey(message, settings.key, settings.keyProperty)
    if (found === undefined) {
      return poison(message, `the message has no idempotency key (property "${settings.keyProperty}")`)
    }
    key = validateKey(found)
  } catch (error) {
    return poison(message, `the message has no usable idempotency key: ${messageOf(error)}`)
  }
  if (message.corrupted === true) {
    return { ok: false, copyKey: key, reason: 'the message body failed its checksum (corrupted)' }
  }
  let payload: P
  try {
    payload = settings.decode(message.body, message)
  } catch (error) {
    return { ok: false, copyKey: key, reason: `the payload could not be decoded: ${messageOf(error)}` }
  }
  return { ok: true, delivery: new RocketMQDelivery(message, key, payload, settings) }
}

/**
 * One message as a Delivery: a class with its verbs on the prototype rather than a literal of
 * closures, because the adapter makes one per message.
 *
 * Its broker calls run one after another: `changeInvisibleDuration` replaces the message's receipt
 * handle, so an ack sent while an extend is on its way would carry the handle the extend is about
 * to retire, and the broker would refuse it.
 */
class RocketMQDelivery<P, M extends MessageViewLike> implements Delivery<P> {
  readonly key: string
  readonly payload: P
  readonly deliveryCount: number
  readonly orderingKey: string
  readonly raw: M
  readonly extendEveryMs: number
  readonly #settings: DeliverySettings<P, M>
  #tail: Promise<void> = Promise.resolve()
  #headers: HeaderRecord | undefined = undefined

  constructor(message: M, key: string, payload: P, settings: DeliverySettings<P, M>) {
    this.key = key
    this.payload = payload
    this.deliveryCount = Math.max(1, message.deliveryAttempt ?? 1)
    // FIFO topics: a message group's messages one at a time, as the broker orders them.
    this.orderingKey = settings.orderingKey?.(message) ?? (message.messageGroup || key)
    this.raw = message
    // A third of the invisible duration: two extends can be lost before the message reappears.
    this.extendEveryMs = Math.max(100, Math.floor(settings.invisibleMs / 3))
    this.#settings = settings
  }

  headers(): HeaderRecord {
    this.#headers ??= headerRecord(this.raw.properties)
    return this.#headers
  }

  ack(): Promise<void> {
    return this.#then(() => this.#settings.consumer.ack(this.raw))
  }

  retry(delayMs: number): Promise<void> {
    const ms = Math.min(MAX_INVISIBLE_MS, Math.max(0, Math.round(delayMs)))
    return this.#then(() => this.#settings.consumer.changeInvisibleDuration(this.raw, ms))
  }

  deadLetter(reason: string): Promise<void> {
    return this.#then(() => this.#settings.deadLetter(this.raw, this.key, reason))
  }

  extend(): Promise<void> {
    return this.#then(() => this.#settings.consumer.changeInvisibleDuration(this.raw, this.#settings.invisibleMs))
  }

  /** Run `call` after the calls before it settled, whatever their outcome. */
  #then(call: () => Promise<void>): Promise<void> {
    const result = this.#tail.then(call)
    this.#tail = result.catch(() => {})
    return result
  }
}

function poison(message: MessageViewLike, reason: string): Translation<never> {
  return { ok: false, copyKey: message.messageId, reason }
}
