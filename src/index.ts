// The root entry: what a newcomer needs (Idempotency, the in-memory store, the errors, the core
// types and the store contract). It loads no driver. Consumers, the outbox, guards and the SQL
// seam have entries of their own: idem/consumer, idem/producer, idem/outbox, idem/guards, idem/sql.

export { BaseStore } from './contract/base-store.js'
export { type Duration, toMs } from './contract/duration.js'
export type {
  BeginItem,
  BeginOutcome,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
  IdempotencyStore,
} from './contract/types.js'
export { RecordState } from './contract/types.js'
export { DEFAULT_MAX_RESULT_BYTES } from './contract/validate.js'
export { type EncryptionOptions, generateEncryptionKey } from './core/encryption.js'
export type { ErrorClass, ErrorTypes } from './core/error-types.js'
export type {
  IdempotencyEventBase,
  IdempotencyEventName,
  IdempotencyEvents,
  IdempotencyListener,
} from './core/events.js'
export { derivedKey, Idempotency } from './core/idempotency.js'
export { recordId } from './core/key.js'
export type {
  CacheOptions,
  CallOrigin,
  IdempotencyOptions,
  InProgressBehaviour,
  PolicyOptions,
  RunInput,
} from './core/options.js'
export type { ExecutionInfo, Probe, RunInfo, StoreOperation } from './core/probe.js'
export type { RunContext, RunResult } from './core/run-context.js'
export type { TransactionContext, TransactionInput, TransactionOutcome } from './core/transaction.js'
export * from './errors.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/memory-store.js'
