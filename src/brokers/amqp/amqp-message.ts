// Reading an AMQP message as the consumer core needs it: the key, the delivery count and the
// payload, and the headers Idem adds to the copies it publishes (dead-letter, delayed retry).

import type { AmqpMessage } from './amqp-driver.js'

/** Headers Idem sets on the copies it publishes. */
export const IdemHeader = {
  /** Why the message was dead-lettered (a reject cannot carry a reason; Idem's own copy can). */
  DEAD_LETTER_REASON: 'x-idem-dead-letter-reason',
  /** The queue the message was consumed from when it was dead-lettered. */
  DEAD_LETTER_QUEUE: 'x-idem-dead-letter-queue',
  /** When it was dead-lettered (ISO 8601). */
  DEAD_LETTERED_AT: 'x-idem-dead-lettered-at',
  /** Deliveries before this copy: a delayed retry is a new message to the broker, which counts from zero again. */
  DELIVERIES: 'x-idem-deliveries',
} as const

/** Where the key comes from: the `messageId` property (default), a header, or your function. */
export type AmqpKeySource = 'messageId' | { header: string } | ((message: AmqpMessage) => string | undefined)

export function keyOf(message: AmqpMessage, source: AmqpKeySource = 'messageId'): string | undefined {
  const value =
    source === 'messageId'
      ? message.properties.messageId
      : typeof source === 'function'
        ? source(message)
        : message.properties.headers?.[source.header]
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return undefined
}

const count = (value: unknown): number | undefined => {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * 1 on the first delivery. Quorum queues count (`x-delivery-count`, and from RabbitMQ 4.3
 * `x-acquired-count`: earlier deliveries, absent on the first; the larger is used, as 4.3 stopped
 * counting some returns in the first); classic queues only say `redelivered`, so the count is best
 * effort there: 1, or 2 for any redelivery. Deliveries before a delayed retry are carried in
 * `x-idem-deliveries`.
 */
export function deliveryCountOf(message: AmqpMessage): number {
  const headers = message.properties.headers ?? {}
  const earlier = count(headers[IdemHeader.DELIVERIES]) ?? 0
  const counted = [count(headers['x-delivery-count']), count(headers['x-acquired-count'])].filter(
    (n): n is number => n !== undefined,
  )
  const thisCopy = counted.length > 0 ? Math.max(...counted) + 1 : message.fields.redelivered ? 2 : 1
  return earlier + thisCopy
}
