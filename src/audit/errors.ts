// The one error the audit log raises when an entry does not hold: separate from IdempotencyError
// because it is not about a request — it means the log was damaged or tampered with (or is read
// with the wrong keys), and an operator has to look at it.

export class AuditIntegrityError extends Error {
  /** The entry's sequence number, when it could be read. */
  readonly seq: number | undefined
  /** What does not hold, for a person: "key id k9 is not in the keyring", "tag does not verify …". */
  readonly reason: string

  constructor(seq: number | undefined, reason: string, options: { cause?: unknown } = {}) {
    super(
      seq === undefined ? `audit entry: ${reason}` : `audit entry ${seq}: ${reason}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    )
    this.name = 'AuditIntegrityError'
    this.seq = seq
    this.reason = reason
  }
}
