// One AMQP delivery as the consumer core sees it: ack, retry(delay) and deadLetter(reason) on the
// channel it arrived on, every reject with an explicit `requeue` (basic.reject, not nack: for one
// message they are the same, and RabbitMQ 4.3+ counts only rejects in a quorum queue's x-delivery-count). A delivery tag means something
// only on its own channel and only while that channel lives: once it closed (a reconnect, a
// channel error, the broker's consumer timeout) the broker has requeued the message, and a
// settle call fails with StaleDeliveryError instead of acking another message by accident.

import { StaleDeliveryError } from '../../consumer/stale-delivery.js'
import type { Delivery } from '../../consumer/types.js'
import { Repeating } from '../../core/repeating.js'
import { type HeaderRecord, headerRecord } from '../header-record.js'
import { type AckWindow, type Tracked, Wire } from './amqp-acks.js'
import type { AmqpChannel, AmqpMessage, AmqpPublishOptions } from './amqp-driver.js'
import { IdemHeader } from './amqp-message.js'
import { type ConfirmChannelKeeper, publishConfirmed } from './amqp-publish.js'
import { type DeadLetterTarget, type DelayQueue, delayQueueFor } from './amqp-topology.js'

/** One consume channel's life. Deliveries keep the life they arrived in. */
export interface ChannelLife {
  readonly channel: AmqpChannel
  open: boolean
  /** The channel's acks, sent together at the end of each turn. */
  readonly acks: AckWindow
}

export { StaleDeliveryError }

export interface SettlePolicy {
  queue: string
  publisher: ConfirmChannelKeeper
  confirmTimeoutMs: number
  /** Idem's own copy with the reason, or a plain reject(requeue: false) to the queue's own DLX. */
  deadLetter: DeadLetterTarget | 'reject'
  /** Delay queues, or 'requeue': hold the message, then reject(requeue: true). */
  delays: readonly DelayQueue[] | 'requeue'
  /** Longest a message is held unacked for a 'requeue' retry. */
  maxHoldMs: number
  /** Unsettled this long, the message is handed back (reject, requeue) before the broker's consumer timeout closes the channel. */
  handBackAfterMs: number
  /** Retries held on a timer, flushed (handed back at once) on close. */
  held: Set<() => void>
  report(error: unknown): void
  onHandBack(): void
}

/** Properties a copy keeps. `expiration` and `userId` are dropped: a copy must not expire or be refused. */
function copyOptions(message: AmqpMessage, deliveries: number, extra: Record<string, unknown>): AmqpPublishOptions {
  const p = message.properties
  const headers: Record<string, unknown> = { ...(p.headers ?? {}) }
  // A quorum queue sets x-delivery-count on redelivery only: a stale one on a copy would be read as this copy's.
  delete headers['x-delivery-count']
  const options: AmqpPublishOptions = {
    persistent: true,
    mandatory: true,
    headers: { ...headers, [IdemHeader.DELIVERIES]: deliveries, ...extra },
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined)
  const id = str(p.messageId)
  if (id !== undefined) options.messageId = id
  if (str(p.contentType) !== undefined) options.contentType = str(p.contentType)
  if (str(p.contentEncoding) !== undefined) options.contentEncoding = str(p.contentEncoding)
  if (str(p.correlationId) !== undefined) options.correlationId = str(p.correlationId)
  if (str(p.replyTo) !== undefined) options.replyTo = str(p.replyTo)
  if (str(p.type) !== undefined) options.type = str(p.type)
  if (str(p.appId) !== undefined) options.appId = str(p.appId)
  if (typeof p.timestamp === 'number') options.timestamp = p.timestamp
  if (typeof p.priority === 'number') options.priority = p.priority
  return options
}

/** Already done: the promise of a settle call that had nothing to send. */
const DONE: Promise<void> = Promise.resolve()

/**
 * The hand-back guard runs on a shared timer (Repeating: one per interval, a few field writes to
 * start and stop) rather than a setTimeout per message, which almost always is cleared unfired.
 */
export class AmqpDelivery<P> extends Repeating implements Delivery<P>, Tracked {
  readonly raw: AmqpMessage
  /** The channel life this delivery arrived in: its tag is valid only while `life.open`. */
  readonly life: ChannelLife
  /** Where it stands on the wire, for the channel's ack window. */
  wire: Wire = Wire.OPEN
  #state: 'open' | 'settled' | 'handed-back' = 'open'
  readonly #policy: SettlePolicy
  #headers: HeaderRecord | undefined

  constructor(
    readonly key: string,
    readonly payload: P,
    readonly deliveryCount: number,
    message: AmqpMessage,
    life: ChannelLife,
    policy: SettlePolicy,
  ) {
    super()
    this.raw = message
    this.life = life
    this.#policy = policy
    life.acks.track(this)
    if (Number.isFinite(policy.handBackAfterMs)) this.startRepeating(Math.max(1, policy.handBackAfterMs))
  }

  /** The hand-back guard's one tick. */
  protected override tick(): void {
    this.stopRepeating()
    this.#handBack()
  }

  /**
   * The message's `properties.headers` (an AMQP field table) as strings, built on the first call:
   * Buffers (byte arrays) decoded as UTF-8, numbers and booleans with String(), arrays (x-death)
   * joined with ', ', a nested table as JSON. Names as published: AMQP table keys are case-sensitive.
   * Only the headers: properties such as messageId or correlationId are in `raw.properties`.
   */
  headers(): HeaderRecord {
    this.#headers ??= headerRecord(Object.entries(this.raw.properties.headers ?? {}))
    return this.#headers
  }

  /** Still unsettled near the broker's consumer timeout: requeue it now rather than lose the whole channel. */
  #handBack(): void {
    if (this.#state !== 'open' || !this.life.open) return
    this.#state = 'handed-back'
    this.#policy.onHandBack()
    try {
      this.life.channel.reject(this.raw, true)
      this.wire = Wire.SENT
    } catch (error) {
      this.#policy.report(error)
    }
  }

  /** False when the message was already handed back (the call is then a no-op); throws if the tag is void. */
  #begin(operation: string): boolean {
    if (this.#state === 'handed-back') return false
    if (this.#state === 'settled') throw new Error(`"${this.key}" is already settled (${operation})`)
    this.#state = 'settled'
    this.stopRepeating()
    if (!this.life.open) throw new StaleDeliveryError(this.key, operation)
    return true
  }

  /** Send the reject if the channel is still the one the message came on. */
  #send(operation: 'requeue' | 'reject'): void {
    if (!this.life.open) throw new StaleDeliveryError(this.key, operation)
    this.life.channel.reject(this.raw, operation === 'requeue')
    this.wire = Wire.SENT
  }

  /** The ack, sent with the channel's other acks of this turn; rejects if it could not be. */
  #sendAck(): Promise<void> {
    if (!this.life.open) return Promise.reject(new StaleDeliveryError(this.key, 'ack'))
    return this.life.acks.ack(this)
  }

  /** Not an async function: it runs once per message, and its promise is the ack window's, shared. */
  ack(): Promise<void> {
    try {
      if (!this.#begin('ack')) return DONE
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#sendAck()
  }

  async retry(delayMs: number): Promise<void> {
    if (!this.#begin('retry')) return
    const { delays } = this.#policy
    if (!(delayMs > 0)) return this.#send('requeue')
    if (delays === 'requeue') return this.#holdThenRequeue(delayMs)
    const delay = delayQueueFor(delays, delayMs)
    try {
      await this.#publishCopy('', delay.queue, {})
    } catch (error) {
      // The delay queue refused the copy: fall back to holding the message for the delay.
      this.#policy.report(error)
      return this.#holdThenRequeue(delayMs)
    }
    await this.#sendAck()
  }

  async deadLetter(reason: string): Promise<void> {
    if (!this.#begin('deadLetter')) return
    const target = this.#policy.deadLetter
    if (target === 'reject') return this.#send('reject')
    try {
      await this.#publishCopy(target.exchange, target.routingKey, {
        [IdemHeader.DEAD_LETTER_REASON]: reason,
        [IdemHeader.DEAD_LETTER_QUEUE]: this.#policy.queue,
        [IdemHeader.DEAD_LETTERED_AT]: new Date().toISOString(),
      })
    } catch (error) {
      // Never drop it: hand it back a little later, and say why (the core reports a broker_error).
      this.#holdThenRequeue(5000)
      throw error
    }
    // Confirmed in the dead-letter queue: only now forget the original. A crash in between leaves
    // both; the dead-letter copy keeps the messageId, so it can be recognised.
    await this.#sendAck()
  }

  /** Publish a copy of this message on the confirm channel and wait for the broker's confirm. */
  async #publishCopy(exchange: string, routingKey: string, extra: Record<string, unknown>): Promise<void> {
    const channel = await this.#policy.publisher.channel()
    const options = copyOptions(this.raw, this.deliveryCount, extra)
    await publishConfirmed(channel, exchange, routingKey, this.raw.content, options, this.#policy.confirmTimeoutMs)
  }

  /** Keep the message unacked for the delay (bounded below the consumer timeout), then reject it with requeue. */
  #holdThenRequeue(delayMs: number): void {
    const { held } = this.#policy
    const release = () => {
      clearTimeout(timer)
      held.delete(release)
      try {
        if (this.life.open) this.#send('requeue')
      } catch (error) {
        this.#policy.report(error)
      }
    }
    const timer = setTimeout(release, Math.min(delayMs, this.#policy.maxHoldMs))
    held.add(release)
  }
}
