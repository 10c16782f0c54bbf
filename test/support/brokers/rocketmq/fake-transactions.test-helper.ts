// A stand-in for the RocketMQ Producer's transactional half, for the transaction tests that are
// about the database's decisions: it keeps every half message and records how each one ended.

import type {
  CheckedMessageLike,
  RocketMQOutgoingLike,
  RocketMQProducerLike,
  RocketMQTransactionLike,
  SendReceiptLike,
} from '../../../../src/brokers/rocketmq/rocketmq-producer-driver.js'

export interface HalfMessage {
  outgoing: RocketMQOutgoingLike
  messageId: string
  /** How the producer ended it: undefined while open. */
  ended: 'commit' | 'rollback' | undefined
}

export class FakeTransactionalClient implements RocketMQProducerLike {
  readonly halves: HalfMessage[] = []
  /** Make the next half message's send fail (the broker did not store it). */
  failNextSend = false
  /** Make commit() and rollback() fail (the producer lost the broker after the local commit). */
  failEnds = false

  beginTransaction(): RocketMQTransactionLike {
    let half: HalfMessage | undefined
    const end = (how: 'commit' | 'rollback') => async () => {
      if (this.failEnds) throw new Error(`${how} lost`)
      if (half === undefined) throw new Error(`${how} of a transaction with no message`)
      half.ended = how
    }
    const transaction = { commit: end('commit'), rollback: end('rollback') }
    this.#pending = (sent) => {
      half = sent
    }
    return transaction
  }

  #pending: ((half: HalfMessage) => void) | undefined

  async send(outgoing: RocketMQOutgoingLike, transaction?: RocketMQTransactionLike): Promise<SendReceiptLike> {
    if (transaction === undefined) throw new Error('the fake only takes transactional sends')
    if (this.failNextSend) {
      this.failNextSend = false
      throw new Error('the broker is unreachable')
    }
    const half: HalfMessage = { outgoing, messageId: `M${this.halves.length + 1}`, ended: undefined }
    this.halves.push(half)
    this.#pending?.(half)
    return { messageId: half.messageId, transactionId: half.messageId }
  }

  /** Half message `i` (0-based), which must exist. */
  half(i: number): HalfMessage {
    const half = this.halves[i]
    if (half === undefined) throw new Error(`no half message ${i}: ${this.halves.length} sent`)
    return half
  }

  /** The half message as the broker shows it to a checker. */
  checked(half: HalfMessage): CheckedMessageLike {
    return { messageId: half.messageId, topic: half.outgoing.topic, properties: new Map(half.outgoing.properties) }
  }
}
