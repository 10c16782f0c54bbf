// The error a full audit queue raises with `onFull: 'fail'`: the caller learns that this event
// will not be recorded and can fail closed (refuse the operation it was about to audit). Apart
// from AuditIntegrityError (errors.ts): it says nothing about the log's integrity, only that the
// writer is behind (a slow or unavailable storage).

export class AuditQueueFullError extends Error {
  /** The queue's bound, `queue.max`. */
  readonly max: number

  constructor(max: number) {
    super(`audit queue is full (${max} events waiting to be written); the event was not recorded`)
    this.name = 'AuditQueueFullError'
    this.max = max
  }
}
