// idem/kafka: an idempotent consumer-group member that commits only offsets whose outcome is
// durable, a confirming idempotent producer, and exactly-once consume-transform-produce with Kafka
// transactions, on @platformatic/kafka (an optional peer dependency, typed here by the part used).

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export { type ConsumeKafkaOptions, consumeKafka, type KafkaHandle } from './consume-kafka.js'
export type {
  KafkaConsumerClient,
  KafkaListOffsetsOptions,
  KafkaMessage,
  KafkaProducerClient,
  KafkaRecordToSend,
} from './kafka-driver.js'
export { DEAD_LETTER_HEADERS, MESSAGE_ID_HEADER } from './kafka-headers.js'
export type { KafkaOptions } from './kafka-options.js'
export { type KafkaProducer, type KafkaProducerOptions, kafkaProducer } from './kafka-producer.js'
export {
  type KafkaTransformHandle,
  type KafkaTransformOptions,
  kafkaTransform,
} from './kafka-transform.js'
export type { KafkaTransactionalProducerClient, KafkaTransformTransaction } from './kafka-transform-client.js'
export type { KafkaTransformStats } from './kafka-transform-loop.js'
export type { KafkaTransformOutput } from './kafka-transform-records.js'
export type { KafkaConsumerStats } from './kafka-worker.js'
