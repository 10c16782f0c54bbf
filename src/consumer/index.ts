// The broker-agnostic consumer core: the contract adapters implement, and the consumer itself.
export { IdempotentConsumer } from './consumer.js'
export { defaultBackoff } from './decide.js'
export { decodeJson } from './decode-json.js'
export type { ConsumerHandle, ConsumerSource, ConsumerStats } from './handle.js'
export { DeliveryWithdrawnError, StaleDeliveryError } from './stale-delivery.js'
export * from './types.js'
