// The root entry: the core, the store contract and the in-memory store. It loads no driver.

export * from './consumer/index.js'
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
export { DEFAULT_MAX_RESULT_BYTES, MAX_RECORD_ID_LENGTH } from './contract/validate.js'
export type {
  IdempotencyEventBase,
  IdempotencyEventName,
  IdempotencyEvents,
  IdempotencyListener,
} from './core/events.js'
export { canonicalJson, fingerprintOf } from './core/fingerprint.js'
export type { RunContext, RunResult } from './core/idempotency.js'
export { derivedKey, Idempotency } from './core/idempotency.js'
export { MAX_KEY_LENGTH, recordId, validateKey } from './core/key.js'
export type {
  CacheOptions,
  IdempotencyOptions,
  InProgressBehaviour,
  PolicyOptions,
  RunInput,
} from './core/options.js'
export type { TransactionContext, TransactionInput, TransactionOutcome } from './core/transaction.js'
export * from './errors.js'
export * from './guards/index.js'
export * from './outbox/index.js'
export * from './producer/index.js'
export {
  placeholder,
  type SqlDatabase,
  type SqlDialect,
  type SqlExecutor,
  type SqlResult,
} from './sql/executor.js'
export { hasInbox, type Inbox, type InboxStore } from './sql/inbox.js'
export { inSavepoint } from './sql/savepoint.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/memory-store.js'
