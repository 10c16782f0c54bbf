// Doubles of the driver's JsMsg and JetStreamClient for the adapter's unit tests: they record what
// the adapter told the broker instead of telling a server.

import type {
  JetStreamClientLike,
  JetStreamPublishOptionsLike,
  JsMsgLike,
  PubAckLike,
} from '../../../../src/brokers/nats/nats-driver.js'
import { natsHeaders } from '../../../../src/brokers/nats/nats-headers.js'

export interface FakeMsg extends JsMsgLike {
  /** What the adapter answered, in order: 'ack', 'ackAck', 'nak', 'nak:<ms>', 'working', 'term', 'term:<reason>'. */
  readonly calls: string[]
}

export function fakeMsg(
  options: {
    data?: string
    headers?: Record<string, string>
    seq?: number
    deliveryCount?: number
    ackAck?: boolean
  } = {},
): FakeMsg {
  const calls: string[] = []
  return {
    calls,
    subject: 'orders.created',
    data: new TextEncoder().encode(options.data ?? '{"n":1}'),
    headers: options.headers === undefined ? undefined : natsHeaders(options.headers),
    info: {
      stream: 'ORDERS',
      consumer: 'billing',
      deliveryCount: options.deliveryCount ?? 1,
      streamSequence: options.seq ?? 42,
    },
    ack: () => void calls.push('ack'),
    ackAck: async () => {
      calls.push('ackAck')
      return options.ackAck ?? true
    },
    nak: (millis?: number) => void calls.push(millis === undefined ? 'nak' : `nak:${millis}`),
    working: () => void calls.push('working'),
    term: (reason?: string) => void calls.push(reason === undefined ? 'term' : `term:${reason}`),
  }
}

export interface Published {
  subject: string
  data: string
  options: JetStreamPublishOptionsLike
}

/** A JetStreamClient whose publish records the call and answers with `answer` (or throws it). */
export function fakeJetStream(
  answer: (p: Published) => PubAckLike | Error = () => ({ stream: 'DLQ', seq: 1, duplicate: false }),
) {
  const published: Published[] = []
  const js: JetStreamClientLike = {
    async publish(subject, payload, options) {
      const p = { subject, data: new TextDecoder().decode(payload), options: options ?? {} }
      published.push(p)
      const result = answer(p)
      if (result instanceof Error) throw result
      return result
    },
    consumers: { get: () => Promise.reject(new Error('not in this double')) },
    streams: { get: () => Promise.reject(new Error('not in this double')) },
  }
  return { js, published }
}
