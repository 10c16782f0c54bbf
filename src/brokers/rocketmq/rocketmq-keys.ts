// Which idempotency key a RocketMQ message is handled under. A key the producer chose (a user
// property, or a message key) catches publisher duplicates however they came about: a business
// retry that sent the same order twice gets two message ids but one key. The message id is set by
// the producing client once per message, so it catches redeliveries and the client's own send
// retries, never a second send of the same content.

import type { MessageViewLike } from './rocketmq-consumer-driver.js'

/**
 * - `'propertyOrKeysOrMessageId'` (default): the key property (`keyProperty`, default `idem-key`),
 *   else the first message key, else the message id.
 * - `'property'`: the key property only; a message without it is dead-lettered.
 * - `'propertyOrMessageId'`: the key property, else the message id (message keys are left to
 *   their usual role: a business id to look messages up by, not necessarily unique).
 * - `'messageId'`: always the message id.
 * - a function: your own key (a property, a payload field); undefined dead-letters the message.
 */
export type RocketMQKeySource<M extends MessageViewLike = MessageViewLike> =
  | 'propertyOrKeysOrMessageId'
  | 'property'
  | 'propertyOrMessageId'
  | 'messageId'
  | ((message: M) => string | undefined)

const SOURCES = new Set(['propertyOrKeysOrMessageId', 'property', 'propertyOrMessageId', 'messageId'])

/** `source` checked, for a clear error at construction rather than poison at every message. */
export function checkKeySource<M extends MessageViewLike>(source: unknown): RocketMQKeySource<M> {
  if (typeof source === 'function' || (typeof source === 'string' && SOURCES.has(source))) {
    return source as RocketMQKeySource<M>
  }
  throw new TypeError(
    `key must be 'propertyOrKeysOrMessageId', 'property', 'propertyOrMessageId', 'messageId' or a function, got ${String(source)}`,
  )
}

/** The key of `message` under `source`, or undefined when it has none. Empty strings count as none. */
export function messageKey<M extends MessageViewLike>(
  message: M,
  source: RocketMQKeySource<M>,
  keyProperty: string,
): string | undefined {
  if (typeof source === 'function') return source(message)
  if (source !== 'messageId') {
    const property = message.properties.get(keyProperty)
    if (property) return property
    if (source === 'property') return undefined
    if (source === 'propertyOrKeysOrMessageId') {
      const first = message.keys.find((key) => key !== '')
      if (first !== undefined) return first
    }
  }
  return message.messageId || undefined
}
