// Publishing on a confirm channel and resolving only on the broker's confirmation: a nack, a
// return (mandatory and unroutable), a closed channel or a confirm that never comes all reject.
// Shared by amqpProducer and by the consumer's own publishes (dead-letter and delay copies).

import { PublishNotConfirmedError } from '../../producer/publish-error.js'
import type { AmqpConfirmChannel, AmqpConnection, AmqpMessage, AmqpPublishOptions } from './amqp-driver.js'

export type AmqpPublishFailure = 'nacked' | 'unroutable' | 'timeout' | 'channel-closed'

/**
 * RabbitMQ did not confirm a publish (`reason` says how). Publishing again with the same
 * `messageId` is safe. A `PublishNotConfirmedError` (code `PUBLISH_NOT_CONFIRMED`), as every
 * producer's.
 */
export class AmqpPublishError extends PublishNotConfirmedError {
  readonly reason: AmqpPublishFailure

  constructor(reason: AmqpPublishFailure, message: string, messageId: string | undefined, cause?: unknown) {
    super(message, { messageId, cause })
    this.name = 'AmqpPublishError'
    this.reason = reason
  }
}

/** A publish waiting for its confirm, marked when the broker returned it first. */
interface Pending {
  returned: boolean
}

/**
 * Publishes awaiting a confirm, per channel and per (exchange, routing key, messageId): RabbitMQ
 * sends basic.return before the basic.ack of the same publish, so the oldest pending publish
 * with the returned message's coordinates is the one it belongs to.
 */
const inFlight = new WeakMap<AmqpConfirmChannel, Map<string, Pending[]>>()

function pendingFor(channel: AmqpConfirmChannel): Map<string, Pending[]> {
  let pending = inFlight.get(channel)
  if (pending === undefined) {
    const map = new Map<string, Pending[]>()
    pending = map
    inFlight.set(channel, map)
    channel.on('return', (message: AmqpMessage) => {
      const id = typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined
      const waiting = map.get(coordinates(message.fields.exchange, message.fields.routingKey, id))
      const first = waiting?.find((p) => !p.returned)
      if (first !== undefined) first.returned = true
    })
  }
  return pending
}

const coordinates = (exchange: string, routingKey: string, messageId: string | undefined) =>
  `${exchange}\u0000${routingKey}\u0000${messageId ?? ''}`

/** Publish one message on `channel` and resolve when the broker confirmed it (and did not return it). */
export function publishConfirmed(
  channel: AmqpConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: AmqpPublishOptions,
  timeoutMs: number,
): Promise<void> {
  const id = options.messageId
  const where = `${exchange === '' ? '(default exchange)' : exchange} / ${routingKey}`
  const map = pendingFor(channel)
  const key = coordinates(exchange, routingKey, id)
  const entry: Pending = { returned: false }
  const list = map.get(key) ?? []
  list.push(entry)
  map.set(key, list)
  const forget = () => {
    const at = list.indexOf(entry)
    if (at >= 0) list.splice(at, 1)
    if (list.length === 0 && map.get(key) === list) map.delete(key)
  }

  return new Promise<void>((resolve, reject) => {
    let done = false
    const finish = (error?: AmqpPublishError) => {
      if (done) return
      done = true
      clearTimeout(timer)
      forget()
      if (error === undefined) resolve()
      else reject(error)
    }
    const timer = setTimeout(
      () => finish(new AmqpPublishError('timeout', `no confirm within ${timeoutMs} ms for ${where}`, id)),
      timeoutMs,
    )
    try {
      channel.publish(exchange, routingKey, content, options, (error) => {
        if (error !== null && error !== undefined) {
          // amqplib reports a basic.nack as Error('message nacked'), and a channel that closed
          // with the publish unconfirmed as Error('channel closed').
          const nacked = error instanceof Error && error.message === 'message nacked'
          finish(
            nacked
              ? new AmqpPublishError('nacked', `the broker refused (nacked) the publish to ${where}`, id, error)
              : new AmqpPublishError('channel-closed', `channel closed before the confirm for ${where}`, id, error),
          )
        } else if (entry.returned) {
          finish(new AmqpPublishError('unroutable', `no queue is bound for ${where} (returned as unroutable)`, id))
        } else {
          finish()
        }
      })
    } catch (error) {
      finish(
        new AmqpPublishError('channel-closed', `cannot publish to ${where}: ${(error as Error).message}`, id, error),
      )
    }
  })
}

/**
 * A confirm channel kept open: the caller's own (never closed here), or one this publisher opens
 * on a connection and opens again after it closed (a channel error, a reconnect).
 */
export class ConfirmChannelKeeper {
  readonly #connection: AmqpConnection | undefined
  #channel: AmqpConfirmChannel | undefined
  #opening: Promise<AmqpConfirmChannel> | undefined
  #closed = false
  readonly #onError: (error: unknown) => void

  constructor(source: { channel: AmqpConfirmChannel } | { connection: AmqpConnection }, onError: (e: unknown) => void) {
    this.#onError = onError
    if ('channel' in source) this.#channel = source.channel
    else this.#connection = source.connection
  }

  /** The open channel, opening one first when needed. */
  async channel(): Promise<AmqpConfirmChannel> {
    if (this.#closed) throw new AmqpPublishError('channel-closed', 'the publisher is closed', undefined)
    if (this.#channel !== undefined) return this.#channel
    const connection = this.#connection
    if (connection === undefined) throw new AmqpPublishError('channel-closed', 'the confirm channel closed', undefined)
    this.#opening ??= connection.createConfirmChannel().then(
      (channel) => {
        this.#opening = undefined
        channel.on('error', (error: Error) => this.#onError(error))
        channel.once('close', () => {
          if (this.#channel === channel) this.#channel = undefined
        })
        if (this.#closed) {
          channel.close().catch(() => {})
          throw new AmqpPublishError('channel-closed', 'the publisher is closed', undefined)
        }
        this.#channel = channel
        return channel
      },
      (error: unknown) => {
        this.#opening = undefined
        throw new AmqpPublishError(
          'channel-closed',
          `cannot open a confirm channel: ${String(error)}`,
          undefined,
          error,
        )
      },
    )
    return this.#opening
  }

  /** A channel the caller handed over stays the caller's; only channels opened here are closed. */
  async close(): Promise<void> {
    this.#closed = true
    const channel = this.#channel
    this.#channel = undefined
    if (channel !== undefined && this.#connection !== undefined) await channel.close().catch(() => {})
  }
}
