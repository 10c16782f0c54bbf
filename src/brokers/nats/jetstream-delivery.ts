// One JetStream message as the consumer core's Delivery: its key and payload, the broker's delivery
// count, and ack / nak(delay) / working() / dead-letter-then-term() behind the core's verbs.

import type { Delivery } from '../../consumer/types.js'
import { validateKey } from '../../core/key.js'
import { messageOf } from '../../errors.js'
import { type HeaderEntry, type HeaderRecord, headerRecord } from '../header-record.js'
import type { DeadLetterFn } from './jetstream-dead-letter.js'
import { type JetStreamKeySource, messageKey, sequenceKey } from './jetstream-keys.js'
import type { JsMsgLike, NatsHeadersLike } from './nats-driver.js'

export interface DeliverySettings<P> {
  key: JetStreamKeySource
  /** The stream's creation time in ms, part of sequence keys. */
  streamEpoch: number
  decode: (data: Uint8Array, msg: JsMsgLike) => P
  /** A third of the consumer's ack_wait: how often the core calls working() during a long handler. */
  extendEveryMs: number
  /** Wait for the server to confirm each ack (ackAck), failing the ack after `timeoutMs`. */
  doubleAck: false | { timeoutMs?: number }
  deadLetter: DeadLetterFn
  orderingKey?: (msg: JsMsgLike) => string | undefined
}

export type Translation<P> =
  | { ok: true; delivery: Delivery<P> }
  /** A message the core cannot take (no usable key, undecodable): dead-letter it under `copyId`. */
  | { ok: false; copyId: string; reason: string }

export function toDelivery<P>(msg: JsMsgLike, settings: DeliverySettings<P>): Translation<P> {
  let key: string
  try {
    const found = messageKey(msg, settings.key, settings.streamEpoch)
    if (found === undefined) return poison(msg, settings, 'the message has no idempotency key (Nats-Msg-Id)')
    key = validateKey(found)
  } catch (error) {
    return poison(msg, settings, `the message has no usable idempotency key: ${messageOf(error)}`)
  }
  let payload: P
  try {
    payload = settings.decode(msg.data, msg)
  } catch (error) {
    return { ok: false, copyId: key, reason: `the payload could not be decoded: ${messageOf(error)}` }
  }
  return { ok: true, delivery: new JetStreamDelivery(msg, key, payload, settings) }
}

/** Settled at once: ack, nak and working only queue a frame, so their promise can be one for all. */
const QUEUED: Promise<void> = Promise.resolve()

/**
 * One message as a Delivery: a class with its verbs on the prototype rather than a literal of
 * closures, because the adapter makes one per message.
 */
class JetStreamDelivery<P> implements Delivery<P> {
  readonly key: string
  readonly payload: P
  readonly deliveryCount: number
  readonly orderingKey: string
  readonly raw: JsMsgLike
  readonly extendEveryMs: number
  readonly #settings: DeliverySettings<P>
  #headers: HeaderRecord | undefined = undefined

  constructor(msg: JsMsgLike, key: string, payload: P, settings: DeliverySettings<P>) {
    this.key = key
    this.payload = payload
    this.deliveryCount = msg.info.deliveryCount
    this.orderingKey = settings.orderingKey?.(msg) ?? key
    this.raw = msg
    this.extendEveryMs = settings.extendEveryMs
    this.#settings = settings
  }

  headers(): HeaderRecord {
    this.#headers ??= headerRecord(headerEntries(this.raw.headers))
    return this.#headers
  }

  // The driver's ack/nak/working/term only queue a frame; a closed connection's throw becomes a rejection.
  ack(): Promise<void> {
    const { doubleAck } = this.#settings
    if (doubleAck !== false) return this.#ackAck(doubleAck.timeoutMs)
    try {
      this.raw.ack()
    } catch (error) {
      return Promise.reject(error)
    }
    return QUEUED
  }

  async #ackAck(timeoutMs: number | undefined): Promise<void> {
    if (!(await this.raw.ackAck(timeoutMs === undefined ? undefined : { timeout: timeoutMs }))) {
      throw new Error(`JetStream did not confirm the ack of "${this.key}" (already acknowledged, or no reply subject)`)
    }
  }

  retry(delayMs: number): Promise<void> {
    try {
      this.raw.nak(delayMs > 0 ? delayMs : undefined)
    } catch (error) {
      return Promise.reject(error)
    }
    return QUEUED
  }

  deadLetter(reason: string): Promise<void> {
    return this.#settings.deadLetter(this.raw, this.key, reason)
  }

  extend(): Promise<void> {
    try {
      this.raw.working()
    } catch (error) {
      return Promise.reject(error)
    }
    return QUEUED
  }
}

/**
 * The message's NATS headers, each value of a repeated name in order (joined with ', ' by
 * `headerRecord`). Names as sent: nats.js matches header names exactly by default (NATS headers
 * are case-sensitive), so `Nats-Msg-Id` stays `Nats-Msg-Id`.
 */
function* headerEntries(headers: NatsHeadersLike | undefined): Iterable<HeaderEntry> {
  if (headers === undefined) return
  for (const name of headers.keys()) for (const value of headers.values(name)) yield [name, value]
}

function poison<P>(msg: JsMsgLike, settings: DeliverySettings<P>, reason: string): Translation<P> {
  return { ok: false, copyId: sequenceKey(msg.info, settings.streamEpoch), reason }
}
