// idem/pulsar: Apache Pulsar over its WebSocket API (the `ws` package, an optional peer dependency):
// an idempotent consumer over a Shared or Key_Shared subscription, and a producer that always sets
// the `idem-key` property and waits for the broker's confirmation.

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export {
  type ConsumePulsarOptions,
  consumePulsar,
  type PulsarConsumerStats,
  type PulsarSourceOptions,
} from './pulsar-consumer.js'
export { DeadLetterProperties } from './pulsar-dead-letter.js'
export type { ProducerReply, PulsarMessage } from './pulsar-driver.js'
export { KEY_PROPERTY, messageIdKey, type PulsarKeySource } from './pulsar-keys.js'
export {
  type PulsarMessageToSend,
  type PulsarProducer,
  type PulsarProducerOptions,
  type PulsarSendReceipt,
  pulsarProducer,
} from './pulsar-producer.js'
export { PulsarConnectError } from './pulsar-socket.js'
