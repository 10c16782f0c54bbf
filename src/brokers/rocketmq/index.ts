// idem/rocketmq: Apache RocketMQ 5 (`rocketmq-client-nodejs`, gRPC to the proxy, an optional peer
// dependency): an idempotent consumer over a simple consumer, a producer that carries the Idem key
// and waits for the broker's receipt, and transactional messages whose check-back answers from
// the local transaction's record.

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export {
  type ConsumeRocketMQOptions,
  consumeRocketMQ,
  MIN_INVISIBLE_MS,
  type RocketMQConsumerStats,
  type RocketMQSourceOptions,
} from './rocketmq-consumer.js'
export type { DeadLetterProducerLike, MessageViewLike, SimpleConsumerLike } from './rocketmq-consumer-driver.js'
export { DeadLetterProperties } from './rocketmq-dead-letter.js'
export { MAX_INVISIBLE_MS } from './rocketmq-delivery.js'
export type { RocketMQKeySource } from './rocketmq-keys.js'
export {
  KEY_PROPERTY,
  type RocketMQMessage,
  type RocketMQProducer,
  type RocketMQProducerOptions,
  type RocketMQSendReceipt,
  rocketMQProducer,
} from './rocketmq-producer.js'
export type {
  CheckedMessageLike,
  RocketMQOutgoingLike,
  RocketMQProducerLike,
  RocketMQTransactionLike,
  SendReceiptLike,
  TransactionCheckerLike,
} from './rocketmq-producer-driver.js'
export { TransactionResolution } from './rocketmq-producer-driver.js'
export { DEFAULT_TRANSACTIONS_TABLE, TransactionOutcome, transactionsSchema } from './rocketmq-transaction-sql.js'
export {
  type TransactionalProducer,
  type TransactionalProducerOptions,
  type TransactionalSendResult,
  type TransactionCheckerOptions,
  TransactionDeadlineError,
  TransactionProperties,
  transactionalProducer,
  transactionChecker,
} from './rocketmq-transactions.js'
