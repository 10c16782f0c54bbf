// idem/amqp: RabbitMQ (amqplib, an optional peer dependency): an idempotent consumer over a queue
// and a producer that waits for publisher confirms.

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export {
  type AmqpConsumerStats,
  type AmqpSourceOptions,
  type AmqpSubscription,
  type AmqpSubscriptionStats,
  type ConsumeAmqpOptions,
  consumeAmqp,
} from './amqp-consumer.js'
export { AmqpDelivery, StaleDeliveryError } from './amqp-delivery.js'
export type {
  AmqpChannel,
  AmqpConfirmChannel,
  AmqpConnection,
  AmqpMessage,
  AmqpMessageProperties,
  AmqpPublishOptions,
} from './amqp-driver.js'
export { type AmqpKeySource, deliveryCountOf, IdemHeader, keyOf } from './amqp-message.js'
export { type AmqpOutgoingMessage, type AmqpProducer, type AmqpProducerOptions, amqpProducer } from './amqp-producer.js'
export { AmqpPublishError, type AmqpPublishFailure, publishConfirmed } from './amqp-publish.js'
export { DEFAULT_DELAY_TIERS, type DeadLetterTarget, defaultDeadLetter } from './amqp-topology.js'
