// The broker-agnostic consumer core: the contract adapters implement, and the consumer itself.
export { IdempotentConsumer } from './consumer.js'
export { defaultBackoff } from './decide.js'
export * from './types.js'
