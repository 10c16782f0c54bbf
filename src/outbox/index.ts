// The transactional outbox: messages written in the caller's SQL transaction, published by a relay.

// What the relay publishes through, so that an outbox user needs no other entry point.
export type { OutgoingMessage, Producer } from '../producer/types.js'
export { Outbox, type OutboxBacklog, type OutboxMessage, type OutboxOptions, type OutboxTarget } from './outbox.js'
export { DEFAULT_OUTBOX_TABLE, outboxSchema } from './outbox-schema.js'
export { OutboxRelay } from './relay.js'
export type { OutboxRelayOptions, RelayBatch, RelayErrorContext, RelayStats } from './relay-options.js'
