// The confirming producer for Redis Streams: XADD with the message id in a field, resolved on
// XADD's reply. Redis has no duplicate window of its own, so a retried XADD after a lost reply
// (yours, or ioredis resending unanswered commands after a reconnect) adds a second entry with the
// same id field, and the consumer recognises it by that id. Over ioredis or node-redis.

import { warnDeprecated } from '../../contract/deprecation.js'
import { positiveInteger } from '../../contract/duration.js'
import { validateKey } from '../../core/key.js'
import { type ClientOption, ProducerClient } from '../../producer/client.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import { type AnyRedisStreamClient, streamClientOf } from './node-redis-stream-client.js'
import type { RedisStreamClient, StreamArg } from './redis-streams-driver.js'

export interface RedisStreamProducerOptions {
  /**
   * An ioredis client or a connected node-redis client, yours: the producer never closes it. A
   * function returning one (or a promise of one: `() => createClient().connect()`) hands it to the
   * producer, which calls it on first publish and quits it in close().
   */
  client: ClientOption<AnyRedisStreamClient>
  /** The stream messages go to when a message names no `destination`. */
  stream: string
  /** The field that carries the message id; the consumer's `keyField`. Default 'id'. */
  idField?: string
  /** The field that carries the encoded payload; the consumer's `payloadField`. Default 'payload'. */
  payloadField?: string
  /** Payload to field value. Default `JSON.stringify`. */
  encode?: (payload: unknown) => string
  /**
   * Trim the stream to about this many entries on each XADD (`MAXLEN ~ n`: Redis trims whole
   * macro-nodes, so it keeps at least n and a little more). Trimming deletes entries whether or not
   * the group acknowledged them: keep n well above what consumers can fall behind by. Default: no trimming.
   */
  maxLen?: number
}

export interface RedisStreamProducer extends Producer {
  /** XADD the message; resolves once Redis replied, i.e. the entry is in the stream. Retry with the same id. */
  publish(message: OutgoingMessage): Promise<void>
  /** Quits the client only if a factory made it. */
  close(): Promise<void>
}

/**
 * A producer that XADDs each message with its id in a field and resolves on Redis' reply.
 *
 * @example
 * const producer = redisStreamProducer({ client: new Redis(), stream: 'orders' })
 * await producer.publish({ id: 'order-42', payload: { total: 42 } })
 */
export function redisStreamProducer(options: RedisStreamProducerOptions): RedisStreamProducer
/** @deprecated Pass one options object: `redisStreamProducer({ client, stream, ... })`. */
export function redisStreamProducer(
  client: AnyRedisStreamClient,
  options: Omit<RedisStreamProducerOptions, 'client'>,
): RedisStreamProducer
export function redisStreamProducer(
  first: RedisStreamProducerOptions | AnyRedisStreamClient,
  second?: Omit<RedisStreamProducerOptions, 'client'>,
): RedisStreamProducer {
  let options: RedisStreamProducerOptions
  if (isClient(first)) {
    warnDeprecated('redisStreamProducer(client, options)', 'redisStreamProducer({ client, ...options })')
    options = { ...(second as Omit<RedisStreamProducerOptions, 'client'>), client: first }
  } else {
    options = first as RedisStreamProducerOptions
  }
  const source = new ProducerClient<RedisStreamClient>(
    asStreamClient(options?.client),
    'redisStreamProducer',
    'an ioredis client or a connected node-redis client',
  )
  if (typeof options.stream !== 'string' || options.stream === '') {
    throw new TypeError('redisStreamProducer needs { stream }: the stream messages without a destination go to')
  }
  const idField = options.idField ?? 'id'
  const payloadField = options.payloadField ?? 'payload'
  const encode = options.encode ?? JSON.stringify
  const trim: StreamArg[] =
    options.maxLen === undefined ? [] : ['MAXLEN', '~', positiveInteger(options.maxLen, 'maxLen')]

  return {
    async publish(message: OutgoingMessage): Promise<void> {
      const id = validateKey(message.id, 'key')
      const encoded = encode(message.payload)
      if (typeof encoded !== 'string') throw new TypeError(`encode must return a string for message ${id}`)
      const fields: StreamArg[] = [idField, id, payloadField, encoded]
      for (const [name, value] of Object.entries(message.headers ?? {})) {
        if (name === idField || name === payloadField) {
          throw new TypeError(`header "${name}" would overwrite the message's ${name === idField ? 'id' : 'payload'}`)
        }
        fields.push(name, value)
      }
      await (await source.get()).call('XADD', message.destination ?? options.stream, ...trim, '*', ...fields)
    },
    close: () => source.close((client) => client.quit()),
  }
}

/** The old form's first argument: a client of either driver rather than an options object. */
function isClient(value: unknown): value is AnyRedisStreamClient {
  const v = value as Record<string, unknown> | null | undefined
  return typeof v?.call === 'function' || (typeof v?.sendCommand === 'function' && 'isOpen' in (v as object))
}

/** The client option with both drivers as the adapter's client: an instance at once, a factory's on first publish. */
function asStreamClient(
  option: ClientOption<AnyRedisStreamClient> | undefined,
): ClientOption<RedisStreamClient> | undefined {
  if (typeof option === 'function') {
    return () => {
      const made = option()
      return made instanceof Promise ? made.then(streamClientOf) : streamClientOf(made)
    }
  }
  // Anything but an object is left for ProducerClient to refuse, with the message naming the option.
  return option === null || typeof option !== 'object' ? option : streamClientOf(option)
}
