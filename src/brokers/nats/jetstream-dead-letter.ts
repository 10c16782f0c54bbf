// Dead-lettering on JetStream. `term()` stops redelivery but carries no reason (servers before 2.11
// do not even understand `+TERM <reason>` and redeliver the message), so the message is first
// copied, with its reason in a header, to a dead-letter subject a stream captures; only once that
// stream confirmed the copy (PubAck) is the original terminated. A failed copy leaves the original
// unterminated: it is delivered again after ack_wait and dead-lettered again.

import { type Duration, toMs } from '../../contract/duration.js'
import { MSG_ID_HEADER } from './jetstream-keys.js'
import type { JetStreamClientLike, JsMsgLike } from './nats-driver.js'
import { headerValue, natsHeaders } from './nats-headers.js'

/** Headers on the dead-letter copy, besides the original message's own. */
export const DeadLetterHeaders = {
  REASON: 'Idem-Dead-Letter-Reason',
  KEY: 'Idem-Key',
  MSG_ID: 'Idem-Original-Msg-Id',
  SUBJECT: 'Idem-Original-Subject',
  STREAM: 'Idem-Original-Stream',
  SEQUENCE: 'Idem-Original-Sequence',
  CONSUMER: 'Idem-Original-Consumer',
  DELIVERY_COUNT: 'Idem-Delivery-Count',
} as const

export interface DeadLetterOptions {
  /** Where the copy goes; a stream must capture it. `false`: only term() (the reason is lost). */
  subject: string | false
  /** How long to wait for the dead-letter stream's PubAck. Default: the client's timeout. */
  timeout?: Duration
  /** Also pass the reason to term() (NATS server 2.11 and later keep it in the termination advisory). */
  termReason?: boolean
}

export type DeadLetterFn = (msg: JsMsgLike, copyId: string, reason: string) => Promise<void>

/**
 * A function that dead-letters one message. `copyId` is the copy's msgID: a second dead-lettering
 * of the same message (its term() was lost) within the dead-letter stream's duplicate window is
 * then recognised there.
 */
export function deadLetterer(js: JetStreamClientLike, options: DeadLetterOptions): DeadLetterFn {
  const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, 'deadLetterTimeout')
  return async (msg, copyId, reason) => {
    if (options.subject !== false) {
      const msgId = msg.headers?.get(MSG_ID_HEADER)
      const headers = natsHeaders(
        {
          [DeadLetterHeaders.REASON]: reason,
          [DeadLetterHeaders.KEY]: copyId,
          [DeadLetterHeaders.SUBJECT]: msg.subject,
          [DeadLetterHeaders.STREAM]: msg.info.stream,
          [DeadLetterHeaders.SEQUENCE]: String(msg.info.streamSequence),
          [DeadLetterHeaders.CONSUMER]: msg.info.consumer,
          [DeadLetterHeaders.DELIVERY_COUNT]: String(msg.info.deliveryCount),
          ...(msgId ? { [DeadLetterHeaders.MSG_ID]: msgId } : {}),
        },
        msg.headers,
      )
      await js.publish(options.subject, msg.data, {
        msgID: copyId,
        headers,
        ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
      })
    }
    msg.term(options.termReason ? headerValue(reason) : undefined)
  }
}
