// Dead-lettering on Pulsar. The subscription's own dead-letter policy (maxRedeliverCount with a
// deadLetterTopic) moves a message after so many negative acks but carries no reason, and counts
// every redelivery, where Idem counts failed attempts. So the message is copied, with its reason
// and origin in properties, to a dead-letter topic through a producer socket; only once the broker
// confirmed the copy is the original acknowledged. A failed copy leaves the original unacknowledged:
// it is delivered again (at once, when the failure closed the consumer socket) and dead-lettered again.

import type { PulsarMessage } from './pulsar-driver.js'
import type { Publisher } from './pulsar-publisher.js'

/** Properties on the dead-letter copy, besides the original message's own. */
export const DeadLetterProperties = {
  REASON: 'idem-dead-letter-reason',
  /** The key the message was handled under (for a copy with no usable key: its message id key). */
  KEY: 'idem-key',
  /** The original's `idem-key` property, when the key came from elsewhere and it had one. */
  ORIGINAL_KEY: 'idem-original-key',
  TOPIC: 'idem-original-topic',
  SUBSCRIPTION: 'idem-original-subscription',
  MESSAGE_ID: 'idem-original-message-id',
  DELIVERY_COUNT: 'idem-delivery-count',
} as const

/** Copies one message to the dead-letter topic and resolves once the broker stored the copy. */
export type DeadLetterCopy = (message: PulsarMessage, key: string, reason: string) => Promise<void>

export interface DeadLetterOrigin {
  /** `persistent://…` of the consumed topic. */
  topic: string
  subscription: string
  /** The property the key is read from. */
  keyProperty: string
}

/** A DeadLetterCopy over `publisher` (a producer socket to the dead-letter topic), or none (`false`). */
export function deadLetterCopier(publisher: Publisher | false, origin: DeadLetterOrigin): DeadLetterCopy {
  if (publisher === false) return async () => {}
  return async (message, key, reason) => {
    const original = message.properties?.[origin.keyProperty]
    await publisher.send(
      {
        payload: message.payload,
        properties: {
          ...message.properties,
          [DeadLetterProperties.REASON]: reason,
          [DeadLetterProperties.KEY]: key,
          ...(original !== undefined && original !== key ? { [DeadLetterProperties.ORIGINAL_KEY]: original } : {}),
          [DeadLetterProperties.TOPIC]: origin.topic,
          [DeadLetterProperties.SUBSCRIPTION]: origin.subscription,
          [DeadLetterProperties.MESSAGE_ID]: message.messageId,
          [DeadLetterProperties.DELIVERY_COUNT]: String((message.redeliveryCount ?? 0) + 1),
        },
        ...(message.key === undefined ? {} : { key: message.key }),
      },
      key,
    )
  }
}
