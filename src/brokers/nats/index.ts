// idem/nats: JetStream (the `nats` v2 client, an optional peer dependency): an idempotent consumer
// over a durable pull consumer, and a producer that always sets Nats-Msg-Id and waits for the PubAck.

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export {
  type ConsumeJetStreamOptions,
  checkConsumer,
  consumeJetStream,
  type JetStreamConsumerStats,
  type JetStreamSourceOptions,
  type JetStreamSubscription,
  type JetStreamSubscriptionStats,
} from './jetstream-consumer.js'
export { DeadLetterHeaders, type DeadLetterOptions } from './jetstream-dead-letter.js'
export { type JetStreamKeySource, MSG_ID_HEADER, sequenceKey } from './jetstream-keys.js'
export {
  type JetStreamMessage,
  type JetStreamProducer,
  type JetStreamProducerOptions,
  jetStreamProducer,
  type PublishReceipt,
} from './jetstream-producer.js'
export type {
  ConsumerInfoLike,
  JetStreamClientLike,
  JetStreamDeliveryInfo,
  JsMsgLike,
  NatsConnectionLike,
  NatsHeadersLike,
  PubAckLike,
} from './nats-driver.js'
