// jetStreamProducer: every message is published with a msgID (the caller's id, or one generated
// once) and counts as sent only when the stream's PubAck came back. A retry reuses the msgID, so
// the stream's duplicate window (`duplicate_window`, 2 minutes by default) drops a copy a lost
// PubAck made us send twice, and reports it as `duplicate: true`, which is success here. Copies
// further apart than the window are both stored; the consumer's Idem record catches those.

import { setTimeout as sleep } from 'node:timers/promises'
import { validateKey } from '../../core/key.js'
import { newMessageId } from '../../producer/message-id.js'
import type { OutgoingMessage, Producer } from '../../producer/types.js'
import type { JetStreamClientLike } from './nats-driver.js'
import { natsHeaders } from './nats-headers.js'

export interface JetStreamProducerOptions {
  /** The subject of messages that name no `destination`. */
  subject?: string
  /** Payload encoding. Default: UTF-8 JSON. */
  encode?: (payload: unknown) => Uint8Array
  /** How long to wait for each PubAck, in ms. Default: the client's timeout (5 s). */
  timeoutMs?: number
  /** Publishes tried, with the same msgID, while no PubAck comes (timeout, no stream leader yet). Default 3. */
  attempts?: number
  /** Delay before the first retry, doubling after. Default 250 ms. */
  retryDelayMs?: number
  /** Fail unless this stream stores the message (`Nats-Expected-Stream`). */
  expectStream?: string
}

/** A message for `publish`: with the id to reuse, or without one to have it generated (once). */
export type JetStreamMessage<P = unknown> = OutgoingMessage<P> | (Omit<OutgoingMessage<P>, 'id'> & { id?: string })

export interface PublishReceipt {
  /** The message id (the msgID): keep it to publish the same message again safely. */
  id: string
  stream: string
  seq: number
  /** The stream already held this id within its duplicate window; this copy was not stored. */
  duplicate: boolean
}

export interface JetStreamProducer extends Producer {
  /** The Producer contract: resolves once the stream confirmed the message (or already held its id). */
  publish(message: JetStreamMessage): Promise<void>
  /** `publish`, telling which id was used, where the message is stored, and whether it was a duplicate. */
  send(message: JetStreamMessage): Promise<PublishReceipt>
}

/** Errors after which the message may or may not be stored: publishing again under the same id is safe. */
const RETRIABLE = new Set(['TIMEOUT', '503', 'DISCONNECT', 'REQUEST_ERROR'])

export function jetStreamProducer(js: JetStreamClientLike, options: JetStreamProducerOptions = {}): JetStreamProducer {
  const encode = options.encode ?? ((payload: unknown) => new TextEncoder().encode(JSON.stringify(payload)))
  const attempts = options.attempts ?? 3
  if (!Number.isSafeInteger(attempts) || attempts < 1)
    throw new RangeError(`attempts must be a positive integer, got ${attempts}`)
  const send = async (message: JetStreamMessage): Promise<PublishReceipt> => {
    const id = validateKey(message.id ?? newMessageId())
    const subject = message.destination ?? options.subject
    if (subject === undefined)
      throw new TypeError(`message "${id}" has no destination and the producer no default subject`)
    const data = encode(message.payload)
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await js.publish(subject, data, {
          msgID: id,
          // Fresh headers each time: the client adds the msgID header to the object it is given.
          ...(message.headers === undefined ? {} : { headers: natsHeaders(message.headers) }),
          ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
          ...(options.expectStream === undefined ? {} : { expect: { streamName: options.expectStream } }),
        })
        return { id, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code
        if (attempt >= attempts || typeof code !== 'string' || !RETRIABLE.has(code)) throw error
        await sleep((options.retryDelayMs ?? 250) * 2 ** (attempt - 1))
      }
    }
  }
  return {
    send,
    async publish(message) {
      await send(message)
    },
  }
}
