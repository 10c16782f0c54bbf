// idem/amqp: RabbitMQ (amqplib, an optional peer dependency): an idempotent consumer over a queue
// and a producer that waits for publisher confirms.

export {
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
export { type AmqpKeySource, decodeJson, deliveryCountOf, IdemHeader, keyOf } from './amqp-message.js'
export { type AmqpOutgoingMessage, type AmqpProducer, type AmqpProducerOptions, amqpProducer } from './amqp-producer.js'
export { AmqpPublishError, type AmqpPublishFailure, publishConfirmed } from './amqp-publish.js'
export { DEFAULT_DELAY_TIERS, type DeadLetterTarget, defaultDeadLetter } from './amqp-topology.js'
