// Every error Idem raises on purpose: one base class, a stable `code`, the cause passed through.

export const ErrorCode = {
  IN_PROGRESS: 'IN_PROGRESS',
  FINGERPRINT_MISMATCH: 'FINGERPRINT_MISMATCH',
  LEASE_LOST: 'LEASE_LOST',
  INVALID_KEY: 'INVALID_KEY',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  RESULT_TOO_LARGE: 'RESULT_TOO_LARGE',
  RESULT_NOT_SERIALIZABLE: 'RESULT_NOT_SERIALIZABLE',
  /** An HTTP request without an Idempotency-Key header where one is `required`. */
  MISSING_KEY: 'MISSING_KEY',
  /** An HTTP request body over `maxRequestBytes`. */
  REQUEST_TOO_LARGE: 'REQUEST_TOO_LARGE',
  /** A state-machine guard refused a transition that is neither allowed nor already applied. */
  STATE_TRANSITION_REJECTED: 'STATE_TRANSITION_REJECTED',
  /** A broker acknowledgement for a delivery whose channel or connection is gone (it will be redelivered). */
  STALE_DELIVERY: 'STALE_DELIVERY',
  /** A producer's message was not confirmed by the broker (nacked, returned, or the connection failed). */
  PUBLISH_NOT_CONFIRMED: 'PUBLISH_NOT_CONFIRMED',
  /**
   * A broker transaction outlived its timeout: a check-back rolled its message back, so the local
   * transaction was rolled back too (RocketMQ's transactional producer).
   */
  TRANSACTION_DEADLINE_PASSED: 'TRANSACTION_DEADLINE_PASSED',
  /** An `encryption` option (or an HTTP `principalSecret`) that cannot be used: a key of the wrong length, a bad key id. */
  ENCRYPTION_CONFIG_INVALID: 'ENCRYPTION_CONFIG_INVALID',
  /** A stored result encrypted under a key id that is not (or no longer) listed in `encryption.keys`. */
  ENCRYPTION_KEY_UNKNOWN: 'ENCRYPTION_KEY_UNKNOWN',
  /** A stored result that fails authentication: altered, truncated, or copied from another record or request. */
  STORED_RESULT_AUTHENTICATION_FAILED: 'STORED_RESULT_AUTHENTICATION_FAILED',
  /** A plaintext stored result read while encryption is on, without `acceptPlaintext`. */
  STORED_RESULT_NOT_ENCRYPTED: 'STORED_RESULT_NOT_ENCRYPTED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** HTTP status each code maps to, for the HTTP middleware and the gateway. */
const httpStatus: Record<ErrorCode, number> = {
  IN_PROGRESS: 409,
  FINGERPRINT_MISMATCH: 422,
  LEASE_LOST: 409,
  INVALID_KEY: 400,
  MISSING_KEY: 400,
  STORE_UNAVAILABLE: 503,
  RESULT_TOO_LARGE: 500,
  RESULT_NOT_SERIALIZABLE: 500,
  REQUEST_TOO_LARGE: 413,
  STATE_TRANSITION_REJECTED: 409,
  STALE_DELIVERY: 409,
  PUBLISH_NOT_CONFIRMED: 502,
  TRANSACTION_DEADLINE_PASSED: 409,
  ENCRYPTION_CONFIG_INVALID: 500,
  ENCRYPTION_KEY_UNKNOWN: 500,
  STORED_RESULT_AUTHENTICATION_FAILED: 500,
  STORED_RESULT_NOT_ENCRYPTED: 500,
}

export interface IdempotencyErrorOptions {
  cause?: unknown
  /** Record id (scope + key) the error is about, when there is one. */
  recordId?: string
}

export class IdempotencyError extends Error {
  readonly code: ErrorCode
  readonly recordId: string | undefined

  constructor(code: ErrorCode, message: string, options: IdempotencyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'IdempotencyError'
    this.code = code
    this.recordId = options.recordId
  }

  /** The HTTP status this error maps to (400, 409, 413, 422, 500, 502 or 503): the one table the HTTP layer reads. */
  get status(): number {
    return httpStatus[this.code]
  }
}

/** Another execution holds the key and its lease is live. */
export class InProgressError extends IdempotencyError {
  /** How long until the holder's lease lapses, by the store's clock. */
  readonly retryAfterMs: number

  constructor(message: string, retryAfterMs: number, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.IN_PROGRESS, message, options)
    this.name = 'InProgressError'
    this.retryAfterMs = Math.max(0, Math.ceil(retryAfterMs))
  }
}

/** The key was used before with a different payload. */
export class FingerprintMismatchError extends IdempotencyError {
  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.FINGERPRINT_MISMATCH, message, options)
    this.name = 'FingerprintMismatchError'
  }
}

/**
 * The caller no longer owns the claim: its lease lapsed and another worker took over, or the
 * record expired or was released. When raised after the function ran, `value` holds what it
 * returned, so nothing is lost.
 */
export class LeaseLostError extends IdempotencyError {
  value: unknown

  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.LEASE_LOST, message, options)
    this.name = 'LeaseLostError'
  }
}

export class InvalidKeyError extends IdempotencyError {
  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.INVALID_KEY, message, options)
    this.name = 'InvalidKeyError'
  }
}

/** The store could not be reached or failed; `cause` is the driver's error. */
export class StoreUnavailableError extends IdempotencyError {
  /** Set when the function had already run: its return value, so nothing is lost. */
  value: unknown

  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.STORE_UNAVAILABLE, message, options)
    this.name = 'StoreUnavailableError'
  }
}

/**
 * The function's result is over the size limit. The function did run: `value` holds its result,
 * and the record is completed with this error so that a duplicate does not run it again.
 */
export class ResultTooLargeError extends IdempotencyError {
  readonly bytes: number
  readonly limit: number
  value: unknown

  constructor(bytes: number, limit: number, options: IdempotencyErrorOptions = {}) {
    super(
      ErrorCode.RESULT_TOO_LARGE,
      `Result is ${bytes} bytes, over the ${limit}-byte limit (maxResultBytes)`,
      options,
    )
    this.name = 'ResultTooLargeError'
    this.bytes = bytes
    this.limit = limit
  }
}

/**
 * The function's result cannot be stored as JSON (a BigInt, a cycle, a function). The function
 * did run: `value` holds its result, and the record is completed with this error so that a
 * duplicate does not run it again.
 */
export class ResultNotSerializableError extends IdempotencyError {
  value: unknown

  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.RESULT_NOT_SERIALIZABLE, message, options)
    this.name = 'ResultNotSerializableError'
  }
}

export function isIdempotencyError(error: unknown): error is IdempotencyError {
  return error instanceof IdempotencyError
}

/** An `encryption` option (or an HTTP `principalSecret`) refused at construction; the message says which part and why. */
export class EncryptionConfigError extends IdempotencyError {
  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.ENCRYPTION_CONFIG_INVALID, message, options)
    this.name = 'EncryptionConfigError'
  }
}

/**
 * A stored result was encrypted under a key id this `Idempotency` does not list (a key removed
 * too early, or a record written by a deployment with other keys). Nothing ran and the record is
 * left as it is: list the key again to read it.
 */
export class EncryptionKeyUnknownError extends IdempotencyError {
  /** The key id the record names. */
  readonly keyId: string

  constructor(keyId: string, message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.ENCRYPTION_KEY_UNKNOWN, message, options)
    this.name = 'EncryptionKeyUnknownError'
    this.keyId = keyId
  }
}

/**
 * A stored result failed authentication: its bytes were altered, or it was copied from another
 * record or written for another request (its record id and fingerprint are authenticated); also,
 * with or without encryption, a result that is not an outcome Idem wrote (a damaged record, or one
 * something else wrote). It is never replayed, nothing ran, and the record is left as it is.
 */
export class StoredResultAuthenticationError extends IdempotencyError {
  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.STORED_RESULT_AUTHENTICATION_FAILED, message, options)
    this.name = 'StoredResultAuthenticationError'
  }
}

/**
 * A stored result in plaintext, read while encryption is on and `acceptPlaintext` is not set.
 * Nothing ran and the record is left as it is.
 */
export class StoredResultNotEncryptedError extends IdempotencyError {
  constructor(message: string, options: IdempotencyErrorOptions = {}) {
    super(ErrorCode.STORED_RESULT_NOT_ENCRYPTED, message, options)
    this.name = 'StoredResultNotEncryptedError'
  }
}

/**
 * What a thrown value says, whatever was thrown, for a reason or a log line: an Error's message,
 * else its string form (`throw undefined` has no message to read, and String() itself throws for
 * an object it cannot convert, such as `Object.create(null)`).
 */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  try {
    return String(error)
  } catch {
    return Object.prototype.toString.call(error)
  }
}
