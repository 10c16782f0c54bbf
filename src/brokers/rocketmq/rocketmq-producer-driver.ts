// The part of the Apache RocketMQ 5 Node client (`rocketmq-client-nodejs`, gRPC to the proxy) that
// the producers use, typed by shape so that nothing here depends on the driver's classes and tests
// can hand in a double. A started `Producer` fits.

/** A message to send (the driver's MessageOptions). */
export interface RocketMQOutgoingLike {
  topic: string
  body: Buffer
  tag?: string
  /** Message keys: indexed by the broker, searchable in its console. */
  keys?: string[]
  properties?: Map<string, string>
  messageGroup?: string
}

/** What the broker said about a stored message (the driver's SendReceipt). */
export interface SendReceiptLike {
  readonly messageId: string
  /** Set for a half (transactional) message. */
  readonly transactionId?: string
}

/** A transaction of one half message (the driver's Transaction). */
export interface RocketMQTransactionLike {
  commit(): Promise<void>
  rollback(): Promise<void>
}

/** The driver's Producer, started (`await producer.startup()`). */
export interface RocketMQProducerLike {
  send(message: RocketMQOutgoingLike, transaction?: RocketMQTransactionLike): Promise<SendReceiptLike>
  beginTransaction(): RocketMQTransactionLike
  shutdown?(): Promise<void>
}

/** A half message the broker asks about (the driver's MessageView, the part read here). */
export interface CheckedMessageLike {
  readonly messageId: string
  readonly topic: string
  readonly properties: Map<string, string>
}

/**
 * The driver's TransactionResolution: what a checker answers. 0 (unspecified) tells the broker
 * nothing yet; it asks again later.
 */
export const TransactionResolution = {
  UNKNOWN: 0,
  COMMIT: 1,
  ROLLBACK: 2,
} as const
export type TransactionResolution = (typeof TransactionResolution)[keyof typeof TransactionResolution]

/** The driver's TransactionChecker: give it to `new Producer({ checker })`. */
export interface TransactionCheckerLike {
  check(message: CheckedMessageLike): Promise<TransactionResolution>
}
