// idem/mqtt: an idempotent MQTT 5 consumer on a persistent session, and a confirming producer,
// over mqtt.js (an optional peer dependency, never imported here).

export { decodeJson } from '../../consumer/decode-json.js'
export type { ConsumerHandle } from '../../consumer/handle.js'
// Every producer's rejection when the broker did not confirm, whatever the broker.
export { PublishNotConfirmedError } from '../../producer/publish-error.js'
export { NO_MATCHING_SUBSCRIBERS } from './ack-reasons.js'
export type {
  MqttConsumerClient,
  MqttPublisherClient,
  MqttPublishPacket,
  MqttQoS,
  MqttUserProperties,
} from './mqtt-client.js'
export {
  type ConsumeMqttOptions,
  consumeMqtt,
  type MqttConsumerHandle,
  type MqttDeadLetterOptions,
  type MqttSourceOptions,
} from './mqtt-consumer.js'
export { type MqttKeySource, ORIGINAL_TOPIC_PROPERTY, REASON_PROPERTY } from './mqtt-message.js'
export {
  DEFAULT_KEY_PROPERTY,
  type MqttProducer,
  type MqttProducerOptions,
  mqttProducer,
} from './mqtt-producer.js'
export { MqttPublishError } from './publish-confirmed.js'
export { type MqttSessionOptions, type MqttSessionOptionsInput, mqttSessionOptions } from './session-options.js'
export { topicMatches } from './topic-filter.js'
