// The broker-agnostic consumer core: the contract adapters implement, and the consumer itself.
export * from './types.js'
