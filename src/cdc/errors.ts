// The one error class of idem/cdc, with a stable code per way the source or the stream can be
// unusable. Separate from IdempotencyError: these are about a MariaDB/MySQL server's replication
// setup or the binlog itself, which an operator has to fix, never about one record.

export type CdcErrorCode =
  /** The source server does not write a binary log (`log_bin` is OFF). */
  | 'BINLOG_OFF'
  /** `binlog_format` is not ROW: statements, not row images, are logged, so there is nothing to apply. */
  | 'BINLOG_FORMAT_NOT_ROW'
  /** `binlog_row_image` is not FULL: before/after images would be partial. */
  | 'BINLOG_ROW_IMAGE_NOT_FULL'
  /** The source user lacks REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR) or SELECT. */
  | 'MISSING_PRIVILEGES'
  /** The position to start from is no longer (purged logs) or not yet (ahead) in the server's binlog. */
  | 'POSITION_UNAVAILABLE'
  /** The binlog holds something this consumer cannot apply faithfully (an XA transaction, an undecodable event). */
  | 'UNSUPPORTED_EVENT'
  /** The binlog connection failed or was closed by the server. */
  | 'STREAM_FAILED'
  /** A source transaction could not be applied after `maxAttempts` tries. */
  | 'APPLY_FAILED'

export class CdcError extends Error {
  readonly code: CdcErrorCode

  constructor(code: CdcErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CdcError'
    this.code = code
  }
}

/** The server's errno on a mysql2 error, if any. */
export function errnoOf(error: unknown): number | undefined {
  const errno = (error as { errno?: unknown } | null)?.errno
  return typeof errno === 'number' ? errno : undefined
}

const ACCESS_DENIED = new Set([1044, 1045, 1142, 1227])

/**
 * `error` from the binlog connection as a CdcError: the server's refusals get the code an
 * operator acts on; anything else is a failed stream.
 */
export function streamError(error: unknown): CdcError {
  if (error instanceof CdcError) return error
  const errno = errnoOf(error)
  const message = error instanceof Error ? error.message : String(error)
  // 1236: the requested GTID or file+offset is not in the binlog (purged, or ahead of it);
  // 1945/1955: MariaDB's own words for a GTID position ahead of its binlog.
  if (errno === 1236 || errno === 1945 || errno === 1955) {
    return new CdcError(
      'POSITION_UNAVAILABLE',
      `the source no longer (or not yet) has the binlog position to resume from: ${message}. Nothing was skipped; start from a fresh snapshot and a new position on purpose`,
      { cause: error },
    )
  }
  if ((errno !== undefined && ACCESS_DENIED.has(errno)) || /Insufficient permissions/i.test(message)) {
    return new CdcError(
      'MISSING_PRIVILEGES',
      `the source user may not read the binlog: ${message}. Grant REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR) and SELECT`,
      { cause: error },
    )
  }
  // The reader names events it cannot decode (MySQL compressed transactions, partial JSON
  // updates) and would go on without their rows: stop instead, and say which setting to change.
  if (/cannot decode/i.test(message)) {
    return new CdcError('UNSUPPORTED_EVENT', `the binlog holds events that cannot be decoded: ${message}`, {
      cause: error,
    })
  }
  return new CdcError('STREAM_FAILED', `the binlog stream failed: ${message}`, { cause: error })
}
