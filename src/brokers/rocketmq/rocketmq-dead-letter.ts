// Dead-lettering on RocketMQ. The broker's own dead-letter queue (`%DLQ%<group>`) keeps no reason,
// and reaching it from a simple consumer means the ForwardMessageToDeadLetterQueue call, which on
// RocketMQ 5.3.3 looks the message up by the offset in its receipt handle: after a
// changeInvisibleDuration (a retry, an extend) that handle no longer points at the message, and
// another message was found forwarded in its place. So the message is instead copied, with its
// reason in a user property, to a dead-letter topic of your choosing, through your Producer; only
// once the broker stored the copy (the send resolved) is the original acknowledged. A failed copy
// leaves the original unacknowledged: it comes back after its invisible duration and is
// dead-lettered again. A lost ack can thus leave two copies, under the same `idem-key`.

import type { DeadLetterProducerLike, MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
import { KEY_PROPERTY } from './rocketmq-producer.js'

/** User properties on the dead-letter copy, besides the original message's own. */
export const DeadLetterProperties = {
  REASON: 'idem-dead-letter-reason',
  /** The key the message was handled (or rejected) under; the copy's own Idem key. */
  KEY: KEY_PROPERTY,
  TOPIC: 'idem-original-topic',
  MESSAGE_ID: 'idem-original-message-id',
  DELIVERY_COUNT: 'idem-delivery-count',
} as const

export interface DeadLetterOptions {
  /** Where the copy goes; create it like any topic (a NORMAL one). */
  topic: string
  /** Sends the copy: a started Producer, yours, never shut down by Idem. */
  producer: DeadLetterProducerLike
}

export type DeadLetterFn<M extends MessageViewLike> = (message: M, copyKey: string, reason: string) => Promise<void>

/** The longest reason kept: RocketMQ limits the size of a message's properties. */
const MAX_REASON_LENGTH = 4000

/** A function that dead-letters one message: copy confirmed, then ack. */
export function deadLetterer<M extends MessageViewLike>(
  consumer: SimpleConsumerLike<M>,
  options: DeadLetterOptions,
): DeadLetterFn<M> {
  return async (message, copyKey, reason) => {
    const properties = new Map(message.properties)
    properties.set(DeadLetterProperties.REASON, propertyText(reason))
    properties.set(DeadLetterProperties.KEY, copyKey)
    properties.set(DeadLetterProperties.TOPIC, message.topic)
    properties.set(DeadLetterProperties.MESSAGE_ID, message.messageId)
    properties.set(DeadLetterProperties.DELIVERY_COUNT, String(message.deliveryAttempt ?? 1))
    await options.producer.send({
      topic: options.topic,
      body: message.body,
      ...(message.tag ? { tag: message.tag } : {}),
      ...(message.keys.length > 0 ? { keys: [...message.keys] } : {}),
      properties,
    })
    await consumer.ack(message)
  }
}

/**
 * The reason as a property value: RocketMQ joins properties with control characters (1 and 2) in
 * its storage format, so those and the other control characters become spaces; and long reasons
 * (a stack in a message) are cut.
 */
function propertyText(reason: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  const text = reason.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim() || 'dead-lettered'
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH - 1)}…` : text
}
