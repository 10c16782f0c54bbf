// amqpProducer: publishes on a confirm channel, every message with a stable messageId (the
// caller's, or one UUIDv7 generated once and reused on every retry), persistent and mandatory,
// and resolves only once the broker confirmed it.

import { setTimeout as sleep } from 'node:timers/promises'
import { warnDeprecated } from '../../contract/deprecation.js'
import { type Duration, toMs } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
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
  /**
   * Where to publish: an amqplib connection (a ChannelModel; the producer opens a confirm channel
   * on it, and opens it again if it closes) or your own ConfirmChannel. Either stays yours: close()
   * closes only the channel the producer opened. A function returning either hands it to the
   * producer, which calls it on first publish and closes what it returned in close().
   */
  client?: ClientOption<AmqpConnection | AmqpConfirmChannel>
  /** @deprecated Use `client`: the same confirm channel. */
  channel?: AmqpConfirmChannel
  /** @deprecated Use `client`: the same connection. */
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
  /** Pause before each further attempt. Default 200 ms. */
  retryDelay?: Duration
  /** @deprecated Use `retryDelay` (a Duration: milliseconds or a string like '200ms'). */
  retryDelayMs?: number
}

export interface AmqpProducer extends Producer {
  /** Resolves once confirmed; rejects with an `AmqpPublishError` carrying the messageId to publish again with. */
  publish(message: AmqpOutgoingMessage): Promise<void>
  /** Closes the channel only if the producer opened it, and the client only if a factory made it. */
  close(): Promise<void>
}

const json = (payload: unknown): Buffer => Buffer.from(JSON.stringify(payload) ?? 'null', 'utf8')

/** What `client` may be, for the TypeError that says so. */
const NEEDS = 'an amqplib connection (ChannelModel) or a ConfirmChannel'

/**
 * A producer that publishes on a RabbitMQ confirm channel and resolves once the broker confirmed
 * each message (persistent, mandatory, with a stable `messageId`).
 *
 * @example
 * const connection = await amqp.connect('amqp://localhost')
 * const producer = amqpProducer({ client: connection, routingKey: 'orders' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 * await producer.close() // the connection stays yours
 */
export function amqpProducer(options: AmqpProducerOptions): AmqpProducer {
  const given = [options?.client, options?.connection, options?.channel].filter((x) => x !== undefined)
  if (given.length !== 1) {
    throw new TypeError(`amqpProducer needs exactly one { client }: ${NEEDS}, or a function returning one`)
  }
  if (options.connection !== undefined) warnDeprecated('amqpProducer({ connection })', 'amqpProducer({ client })')
  if (options.channel !== undefined) warnDeprecated('amqpProducer({ channel })', 'amqpProducer({ client })')
  const source = new ProducerClient(
    given[0] as ClientOption<AmqpConnection | AmqpConfirmChannel>,
    'amqpProducer',
    NEEDS,
  )
  // An instance is checked now; what a factory returns, on the first publish.
  let keeper = source.owned ? undefined : keeperFor(given[0])
  const channel = async (): Promise<AmqpConfirmChannel> => {
    keeper ??= keeperFor(await source.get())
    return keeper.channel()
  }
  const timeoutMs = toMs(options.confirmTimeout ?? '30s', 'confirmTimeout')
  const retries = options.retries ?? 2
  if (!Number.isInteger(retries) || retries < 0)
    throw new RangeError(`retries must be a whole number >= 0, got ${retries}`)
  if (options.retryDelayMs !== undefined)
    warnDeprecated('amqpProducer({ retryDelayMs })', 'amqpProducer({ retryDelay })')
  const retryDelayMs =
    options.retryDelay === undefined ? (options.retryDelayMs ?? 200) : toMs(options.retryDelay, 'retryDelay')
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
          await publishConfirmed(await channel(), exchange, routingKey, content, publishOptions, timeoutMs)
          return
        } catch (error) {
          if (error instanceof TypeError) throw error
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
    async close() {
      await keeper?.close()
      await source.close((client) => (client as { close?(): Promise<void> }).close?.())
    },
  }
}

/** The keeper of a connection's own confirm channel, or of the caller's channel. */
function keeperFor(client: unknown): ConfirmChannelKeeper {
  const c = client as Partial<AmqpConnection & AmqpConfirmChannel> | null
  if (typeof c?.createConfirmChannel === 'function')
    return new ConfirmChannelKeeper({ connection: c as AmqpConnection }, () => {})
  if (typeof c?.publish === 'function') return new ConfirmChannelKeeper({ channel: c as AmqpConfirmChannel }, () => {})
  throw new TypeError(`amqpProducer: client must be ${NEEDS}, got ${c === null ? 'null' : typeof c}`)
}
