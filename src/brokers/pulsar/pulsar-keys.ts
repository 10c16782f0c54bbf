// Which idempotency key a Pulsar message is handled under. A producer-set property (`idem-key`, as
// pulsarProducer sets it) catches publisher duplicates too: a send retried after a lost reply is
// stored as a second message, with a new message id but the same property. The message id names
// one stored message, so it catches only redeliveries of that message. Pulsar's own deduplication
// cannot stand in for the property: it drops a producer's repeated sequence ids, and the
// WebSocket producer only numbers messages per connection, not per application message.

import type { PulsarMessage } from './pulsar-driver.js'

/** The property pulsarProducer puts the message id in, and consumePulsar reads the key from. */
export const KEY_PROPERTY = 'idem-key'

/**
 * - `'propertyOrMessageId'` (default): the key property, or the message id when it is absent.
 * - `'property'`: the key property only; a message without one is dead-lettered.
 * - `'messageId'`: always the message id (when producers' ids are not trusted to be unique).
 * - a function: your own key (a property, a payload field); undefined dead-letters the message.
 */
export type PulsarKeySource =
  | 'property'
  | 'propertyOrMessageId'
  | 'messageId'
  | ((message: PulsarMessage) => string | undefined)

/** The key of `message` under `source`, or undefined when it has none. */
export function messageKey(
  message: PulsarMessage,
  source: PulsarKeySource,
  keyProperty: string,
  topic: string,
): string | undefined {
  if (typeof source === 'function') return source(message)
  if (source !== 'messageId') {
    const key = message.properties?.[keyProperty]
    if (key) return key
    if (source === 'property') return undefined
  }
  return messageIdKey(topic, message.messageId)
}

/**
 * A key naming one stored message: the topic and its message id. BookKeeper never reuses a ledger
 * id, so a topic deleted and created again does not repeat an old message's id.
 */
export function messageIdKey(topic: string, messageId: string): string {
  return `pulsar:${topic}:${messageId}`
}
