// idem/audit: a tamper-evident, encrypted audit log (see types.ts for the format).
export { AuditLog, type AuditLogOptions, type AuditLogStats } from './audit-log.js'
export { checkpointMessage, checkpointSignatureValid, signCheckpoint } from './checkpoint.js'
export { AuditIntegrityError } from './errors.js'
export { FileAuditStorage, type FileAuditStorageOptions, type FileSyncPolicy, type TornTail } from './file-storage.js'
export {
  type AuditRecorder,
  IDEMPOTENCY_AUDIT_EVENTS,
  type IdempotencyAuditEventName,
  type IdempotencyEventLike,
  type IdempotencyEventSource,
  type RecordIdempotencyEventsOptions,
  recordIdempotencyEvents,
} from './idempotency-events.js'
export {
  generateAuditKey,
  generateSigningKeyPair,
  keyringFrom,
  keyringFromFile,
  signerFromPem,
  verifierFromPems,
} from './keys.js'
export {
  auditTableSchema,
  DEFAULT_AUDIT_TABLE,
  PostgresAuditStorage,
  type PostgresAuditStorageOptions,
} from './postgres-storage.js'
export { AuditQueueFullError } from './queue-errors.js'
export { entryHash, entryShapeProblem, GENESIS, openEntry, sealEntry, type UnhashedEntry } from './seal.js'
export type {
  AuditAlgorithm,
  AuditEntry,
  AuditEvent,
  AuditKeyring,
  AuditStorage,
  AuditVerification,
  CheckpointEntry,
  CheckpointSigner,
  CheckpointVerifier,
  SealedEntry,
} from './types.js'
export { type VerifyAuditLogOptions, verifyAuditLog } from './verify.js'
