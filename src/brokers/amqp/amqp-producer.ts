// amqpProducer: publishes on a confirm channel, every message with a stable messageId (the
// caller's, or one UUIDv7 generated once and reused on every retry), persistent and mandatory,
// and resolves only once the broker confirmed it.

import { setTimeout as sleep } from 'node:timers/promises'
import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { newMessageId } from '../../producer/message-id.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { AmqpConfirmChannel, AmqpConnection, AmqpPublishOptions } from './amqp-driver.js'
import { AmqpPublishError, ConfirmChannelKeeper, publishConfirmed } from './amqp-publish.js'

/** A message to publish; without an `id`, the producer generates one once for all its attempts. */
export interface AmqpOutgoingMessage<P = unknown> extends Omit<OutgoingMessage<P>, 'id'> {
  readonly id?: string
  /** The routing key; the producer's `routingKey` when absent. */
  readonly destination?: string
  /** The exchange; the producer's `exchange` when absent. */
  readonly exchange?: string
  readonly correlationId?: string
  readonly type?: string
}

export interface AmqpProducerOptions {
  /** Publish on this confirm channel (yours: never closed by the producer)… */
  channel?: AmqpConfirmChannel
  /** …or on a confirm channel the producer opens on this connection, and opens again if it closes. */
  connection?: AmqpConnection
  /** Default exchange: '' (the default exchange, where the routing key is a queue name). */
  exchange?: string
  /** Default routing key, for messages without a `destination`. */
  routingKey?: string
  /** Reject unroutable messages instead of letting the broker drop them. Default true. */
  mandatory?: boolean
  /** Payload to body. Default JSON (UTF-8), content type application/json. */
  encode?: (payload: unknown) => Buffer
  contentType?: string
  /** How long to wait for the broker's confirm before the attempt fails. Default 30 s. */
  confirmTimeout?: Duration
  /** Further attempts (same messageId) after a nack, a timeout or a closed channel. Default 2. */
  retries?: number
  /** Pause before each further attempt, in ms. Default 200. */
  retryDelayMs?: number
}

export interface AmqpProducer extends Producer {
  /** Resolves once confirmed; rejects with an `AmqpPublishError` carrying the messageId to publish again with. */
  publish(message: AmqpOutgoingMessage): Promise<void>
  /** Closes the channel only if the producer opened it. */
  close(): Promise<void>
}

const json = (payload: unknown): Buffer => Buffer.from(JSON.stringify(payload) ?? 'null', 'utf8')

export function amqpProducer(options: AmqpProducerOptions): AmqpProducer {
  if ((options.channel === undefined) === (options.connection === undefined)) {
    throw new TypeError('amqpProducer needs exactly one of { channel } (a ConfirmChannel) or { connection }')
  }
  const keeper = new ConfirmChannelKeeper(
    options.channel !== undefined ? { channel: options.channel } : { connection: options.connection as AmqpConnection },
    () => {},
  )
  const timeoutMs = toMs(options.confirmTimeout ?? '30s', 'confirmTimeout')
  const retries = options.retries ?? 2
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError('retries must be a whole number >= 0')
  const retryDelayMs = options.retryDelayMs ?? 200
  const encode = options.encode ?? json
  const contentType = options.contentType ?? (options.encode === undefined ? 'application/json' : undefined)

  return {
    async publish(message) {
      // Generated once, before the first attempt: every retry carries the same id.
      const id = validateKey(message.id ?? newMessageId())
      const exchange = message.exchange ?? options.exchange ?? ''
      const routingKey = message.destination ?? options.routingKey
      if (routingKey === undefined)
        throw new TypeError('amqpProducer: the message has no destination and no default routingKey')
      const content = encode(message.payload)
      const publishOptions: AmqpPublishOptions = {
        messageId: id,
        persistent: true,
        mandatory: options.mandatory ?? true,
        timestamp: Math.floor(Date.now() / 1000),
        ...(contentType === undefined ? {} : { contentType }),
        ...(message.headers === undefined ? {} : { headers: { ...message.headers } }),
        ...(message.correlationId === undefined ? {} : { correlationId: message.correlationId }),
        ...(message.type === undefined ? {} : { type: message.type }),
      }
      for (let attempt = 0; ; attempt++) {
        try {
          const channel = await keeper.channel()
          await publishConfirmed(channel, exchange, routingKey, content, publishOptions, timeoutMs)
          return
        } catch (error) {
          const failure =
            error instanceof AmqpPublishError
              ? error
              : new AmqpPublishError('channel-closed', `publish failed: ${String(error)}`, id, error)
          // An unroutable message stays unroutable: no point in publishing it again.
          if (attempt >= retries || failure.reason === 'unroutable') {
            throw new AmqpPublishError(failure.reason, failure.message, id, failure.cause)
          }
          await sleep(retryDelayMs)
        }
      }
    },
    close: () => keeper.close(),
  }
}
