// The confirming producer for Redis Streams: XADD with the message id in a field, resolved on
// XADD's reply. Redis has no duplicate window of its own, so a retried XADD after a lost reply
// (yours, or ioredis resending unanswered commands after a reconnect) adds a second entry with the
// same id field, and the consumer recognises it by that id.

import { validateKey } from '../../core/key.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { RedisStreamClient, StreamArg } from './redis-streams-driver.js'

export interface RedisStreamProducerOptions {
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
}

/** A producer over an ioredis client you own (it is not closed by the producer). */
export function redisStreamProducer(
  client: RedisStreamClient,
  options: RedisStreamProducerOptions,
): RedisStreamProducer {
  const idField = options.idField ?? 'id'
  const payloadField = options.payloadField ?? 'payload'
  const encode = options.encode ?? JSON.stringify
  if (options.maxLen !== undefined && !(Number.isInteger(options.maxLen) && options.maxLen > 0)) {
    throw new RangeError(`maxLen must be a positive integer, got ${options.maxLen}`)
  }
  const trim: StreamArg[] = options.maxLen === undefined ? [] : ['MAXLEN', '~', options.maxLen]

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
      await client.call('XADD', message.destination ?? options.stream, ...trim, '*', ...fields)
    },
  }
}
