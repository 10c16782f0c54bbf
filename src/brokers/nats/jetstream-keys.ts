// Which idempotency key a JetStream message is handled under. A producer-set `Nats-Msg-Id` catches
// publisher duplicates too, however late the retry (the stream's duplicate window only catches those
// within it); the stream sequence identifies one stored message, so it catches only redeliveries of
// that message, never a second copy a publisher retry stored under a new sequence.

import type { JetStreamDeliveryInfo, JsMsgLike } from './nats-driver.js'

export const MSG_ID_HEADER = 'Nats-Msg-Id'

/**
 * - `'msgIdOrSequence'` (default): `Nats-Msg-Id`, or the stream sequence when the header is absent.
 * - `'msgId'`: `Nats-Msg-Id` only; a message without one is dead-lettered.
 * - `'sequence'`: always the stream sequence (when message ids are not trusted to be unique).
 * - a function: your own key (a header, a payload field); undefined dead-letters the message.
 */
export type JetStreamKeySource = 'msgId' | 'msgIdOrSequence' | 'sequence' | ((msg: JsMsgLike) => string | undefined)

/**
 * The key of `msg` under `source`, or undefined when it has none. `streamEpoch` (the stream's
 * creation time) is part of a sequence key: a stream deleted and created again numbers its
 * messages from 1 again, and without it a new message would be taken for an old one's duplicate.
 */
export function messageKey(msg: JsMsgLike, source: JetStreamKeySource, streamEpoch: number): string | undefined {
  if (typeof source === 'function') return source(msg)
  if (source !== 'sequence') {
    const id = msg.headers?.get(MSG_ID_HEADER)
    if (id) return id
    if (source === 'msgId') return undefined
  }
  return sequenceKey(msg.info, streamEpoch)
}

export function sequenceKey(info: JetStreamDeliveryInfo, streamEpoch: number): string {
  return `nats:${info.stream}:${streamEpoch}:${info.streamSequence}`
}

/** Whether `source` may need the stream's creation time. */
export function usesSequence(source: JetStreamKeySource): boolean {
  return source === 'sequence' || source === 'msgIdOrSequence'
}
