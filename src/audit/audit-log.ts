// AuditLog: the writer. `record()` only queues (an audited request never waits on a disk or a
// database); one background writer seals the queued events in order, chains them, signs a
// checkpoint every N entries or T ms, and appends each batch to the storage in one call.
//
// Nothing is lost silently. An event leaves the queue only once the storage has accepted the
// batch it is in; while the storage fails, the writer retries the same batch with backoff
// (reporting each failure through `onError`) and the events stay queued and count toward the
// bound. When the bound is reached, `onFull` decides: 'block' makes `record()` wait for room,
// 'drop' drops the event and counts it in `stats.dropped`, 'fail' rejects with
// AuditQueueFullError so that the caller can fail closed.
//
// A retried batch is the same batch (same sealed bytes): before appending it again the writer
// asks the storage for its last entry, so a batch that did land although the call failed (a lost
// reply from the database) is not written twice.

import { signCheckpoint } from './checkpoint.js'
import { AuditIntegrityError } from './errors.js'
import { AuditQueueFullError } from './queue-errors.js'
import { entryHash, entryShapeProblem, GENESIS, sealEntry } from './seal.js'
import type { AuditEntry, AuditEvent, AuditKeyring, AuditStorage, CheckpointEntry, CheckpointSigner } from './types.js'

export interface AuditLogOptions {
  storage: AuditStorage
  keyring: AuditKeyring
  /** Signs checkpoints; without it the chain is written unsigned. */
  signer?: CheckpointSigner
  checkpoint?: {
    /** A checkpoint after this many entries. Default 1000. */
    everyEntries?: number
    /** A checkpoint this long after the first unsigned entry at the latest. Default 60 000. */
    everyMs?: number
    /**
     * Called with each checkpoint once it is appended to the storage, in order, one at a time:
     * to keep it somewhere else too (another disk, another host), where a tail cut after it shows
     * (`verifyAuditLog`'s `expected`). Never awaited by the writer; a failure (or a throw) is
     * reported through `onError` and the log goes on. `close()` waits for the pending calls.
     */
    publish?: (checkpoint: CheckpointEntry) => void | Promise<void>
  }
  queue?: {
    /** Events queued and not yet written, at most. Default 10 000. */
    max?: number
    /** What `record()` does when the queue is full. Default 'block'. */
    onFull?: 'block' | 'drop' | 'fail'
  }
  /** The time written in entries (taken when an event is recorded). Default `new Date()`. */
  clock?: () => Date
  /**
   * Every storage (or sealing) failure, as it happens; the writer retries. Always an Error (a
   * thrown non-Error is wrapped), so `(error: Error) => void` fits as well as `(error: unknown) => void`.
   * Default: a process warning.
   */
  onError?: (error: Error) => void
  /** Backoff between attempts after a failure: from `initialMs`, doubling, up to `maxMs`. Default 100 → 10 000. */
  retry?: { initialMs?: number; maxMs?: number }
}

export interface AuditLogStats {
  /** Events in the queue, not yet written. */
  queued: number
  /** `record()` calls waiting for room (onFull 'block'), not yet in the queue. */
  blocked: number
  /** Events written (checkpoints not counted). */
  written: number
  /** Events dropped because the queue was full (onFull 'drop'). */
  dropped: number
  /** Checkpoints written by this writer. */
  checkpoints: number
  /** The sequence number of the last entry in the storage (0 for an empty log). */
  lastSeq: number
  /** Failed attempts so far (each one reported through onError). */
  errors: number
}

interface Queued {
  event: AuditEvent
  time: Date
}

/** Where the chain stands: after the last stored entry, or after a prepared batch. */
interface ChainState {
  seq: number
  head: string
  /** Entries since the last checkpoint (count trigger). */
  sinceCheckpoint: number
  /** Whether entries follow the last checkpoint (time trigger, close). */
  unsigned: boolean
  /** performance.now() of the last checkpoint (or of open). */
  checkpointAt: number
}

interface Batch {
  entries: AuditEntry[]
  events: number
  checkpoints: number
  after: ChainState
}

/** Events sealed and appended per storage call, at most. */
const BATCH_EVENTS = 1000

export class AuditLog {
  readonly #storage: AuditStorage
  readonly #keyring: AuditKeyring
  readonly #signer: CheckpointSigner | undefined
  readonly #everyEntries: number
  readonly #everyMs: number
  readonly #max: number
  readonly #onFull: 'block' | 'drop' | 'fail'
  readonly #clock: () => Date
  readonly #onError: (error: Error) => void
  readonly #retryInitialMs: number
  readonly #retryMaxMs: number
  readonly #publish: ((checkpoint: CheckpointEntry) => void | Promise<void>) | undefined
  /** The publish calls, chained: each checkpoint goes out after the one before it. */
  #published: Promise<void> = Promise.resolve()
  /** Set when close() gave up (timeoutMs): the writer stops retrying and leaves what is queued. */
  #abandoned = false
  /** Ends the writer's current backoff early (close() giving up). */
  #wake: (() => void) | undefined

  #chain: ChainState
  readonly #queue: Queued[] = []
  readonly #blocked: Array<{ item: Queued; resolve: () => void }> = []
  /** Events accepted so far (queued or blocked); with #written, what `flush()` waits for. */
  #accepted = 0
  #written = 0
  #dropped = 0
  #checkpoints = 0
  #errors = 0
  readonly #flushes: Array<{ upTo: number; resolve: () => void }> = []
  #writer: Promise<void> | undefined
  #checkpointTimer: NodeJS.Timeout | undefined
  /** Set by close(): the next drain writes a checkpoint whatever the time. */
  #finalCheckpoint = false
  #closing = false
  #closed: Promise<void> | undefined

  private constructor(options: AuditLogOptions, last: AuditEntry | undefined) {
    this.#storage = options.storage
    this.#keyring = options.keyring
    this.#signer = options.signer
    this.#everyEntries = positiveInteger('checkpoint.everyEntries', options.checkpoint?.everyEntries ?? 1000)
    this.#everyMs = positiveNumber('checkpoint.everyMs', options.checkpoint?.everyMs ?? 60_000)
    this.#max = positiveInteger('queue.max', options.queue?.max ?? 10_000)
    const onFull = options.queue?.onFull ?? 'block'
    if (onFull !== 'block' && onFull !== 'drop' && onFull !== 'fail') {
      throw new TypeError(`AuditLog: queue.onFull must be 'block', 'drop' or 'fail', got ${JSON.stringify(onFull)}`)
    }
    this.#onFull = onFull
    this.#clock = options.clock ?? (() => new Date())
    this.#onError = options.onError ?? warn
    this.#retryInitialMs = positiveNumber('retry.initialMs', options.retry?.initialMs ?? 100)
    this.#retryMaxMs = positiveNumber('retry.maxMs', options.retry?.maxMs ?? 10_000)
    this.#publish = options.checkpoint?.publish
    this.#chain = {
      seq: last?.seq ?? 0,
      head: last?.hash ?? GENESIS,
      sinceCheckpoint: 0,
      // A resumed tail of entries is not covered yet: the next checkpoint (by time, or at close) covers it.
      unsigned: last?.kind === 'entry',
      checkpointAt: performance.now(),
    }
    this.#armCheckpointTimer()
  }

  /** Open the log on `storage`, resuming the chain after its last entry (or checkpoint). */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const last = await options.storage.last()
    if (last !== undefined) checkResumable(last)
    return new AuditLog(options, last)
  }

  get stats(): AuditLogStats {
    return {
      queued: this.#queue.length,
      blocked: this.#blocked.length,
      written: this.#written,
      dropped: this.#dropped,
      checkpoints: this.#checkpoints,
      lastSeq: this.#chain.seq,
      errors: this.#errors,
    }
  }

  /**
   * Queue `event` to be written. Resolves at once while the queue has room; when it is full,
   * per `queue.onFull`: waits for room, drops the event (counted), or rejects with
   * AuditQueueFullError. Rejects with a TypeError for an event that is not JSON (checked now, so
   * that one bad event cannot stop the writer), and after `close()`.
   */
  record(event: AuditEvent): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('the audit log is closed'))
    let item: Queued
    try {
      item = { event: snapshot(event), time: this.#clock() }
    } catch (error) {
      return Promise.reject(error)
    }
    // Waiting records go first: a new event never overtakes one that is blocked.
    if (this.#blocked.length === 0 && this.#queue.length < this.#max) {
      this.#accepted++
      this.#queue.push(item)
      this.#kick()
      return Promise.resolve()
    }
    if (this.#onFull === 'drop') {
      this.#dropped++
      return Promise.resolve()
    }
    if (this.#onFull === 'fail') return Promise.reject(new AuditQueueFullError(this.#max))
    this.#accepted++
    return new Promise<void>((resolve) => this.#blocked.push({ item, resolve }))
  }

  /** Resolves once every event recorded before the call (blocked ones included) is appended to the storage. */
  flush(): Promise<void> {
    const upTo = this.#accepted
    if (this.#written >= upTo) return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.#flushes.push({ upTo, resolve })
      this.#kick()
    })
  }

  /**
   * Stop accepting events, write what is queued, then a final checkpoint when a signer is
   * configured and entries follow the last one, wait for the checkpoints being published, and
   * close the storage. While the storage fails, this waits (retrying): without `timeoutMs`,
   * queued events are never given up on. With it, after `timeoutMs` the writer stops, the events
   * not written yet are reported through `onError` (how many), and the storage is closed.
   * A second call returns the first call's promise (its timeout holds).
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closed === undefined) {
      const { timeoutMs } = options
      if (timeoutMs !== undefined) positiveNumber('close timeoutMs', timeoutMs)
      this.#closing = true
      this.#closed = this.#closeWithin(timeoutMs)
    }
    return this.#closed
  }

  async #closeWithin(timeoutMs: number | undefined): Promise<void> {
    const finished = (async () => {
      await this.flush()
      if (this.#signer !== undefined && this.#chain.unsigned) {
        this.#finalCheckpoint = true
        this.#kick()
      }
      while (this.#writer !== undefined) await this.#writer
      await this.#published
    })()
    if (timeoutMs !== undefined) {
      let timer: NodeJS.Timeout | undefined
      const gaveUp = new Promise<true>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs)
      })
      const timedOut = await Promise.race([finished.then(() => false as const), gaveUp])
      clearTimeout(timer)
      if (timedOut) {
        this.#abandoned = true
        this.#wake?.()
        const unwritten = this.#queue.length + this.#blocked.length
        this.#report(
          new Error(
            `audit log: still not written after ${timeoutMs} ms at close (storage failing?); gave up on ${unwritten} unwritten ${unwritten === 1 ? 'event' : 'events'}`,
          ),
        )
      }
    } else {
      await finished
    }
    if (this.#checkpointTimer !== undefined) clearTimeout(this.#checkpointTimer)
    this.#checkpointTimer = undefined
    if (this.#abandoned) {
      // The storage may be what hangs: close it without waiting on it any longer.
      this.#storage.close().catch((error: unknown) => this.#report(asError(error)))
      return
    }
    await this.#storage.close()
  }

  #kick(): void {
    if (this.#writer !== undefined || this.#abandoned) return
    this.#writer = this.#drain().finally(() => {
      this.#writer = undefined
      if (this.#abandoned) return
      if (this.#queue.length > 0 || this.#checkpointDue()) this.#kick()
      else this.#armCheckpointTimer()
    })
  }

  async #drain(): Promise<void> {
    // Start after the current task: a burst of synchronous record() calls becomes one batch.
    await Promise.resolve()
    try {
      while (!this.#abandoned && (this.#queue.length > 0 || this.#checkpointDue())) {
        const batch = await this.#retrying(async () => this.#prepare())
        await this.#retrying((attempt) => this.#append(batch, attempt > 0))
        this.#commit(batch)
      }
    } catch (error) {
      if (error !== ABANDONED) throw error
    }
  }

  #checkpointDue(): boolean {
    if (this.#signer === undefined || !this.#chain.unsigned) return false
    return this.#finalCheckpoint || performance.now() - this.#chain.checkpointAt >= this.#everyMs
  }

  /** Seal the head of the queue (not removed yet) into a batch, with the checkpoints that fall in it. */
  #prepare(): Batch {
    const state = { ...this.#chain }
    const entries: AuditEntry[] = []
    let checkpoints = 0
    const checkpoint = (signer: CheckpointSigner) => {
      const entry = signCheckpoint(
        { seq: state.seq + 1, time: this.#clock(), prev: state.head },
        state.seq,
        state.head,
        signer,
      )
      entries.push(entry)
      checkpoints++
      state.seq = entry.seq
      state.head = entry.hash
      state.sinceCheckpoint = 0
      state.unsigned = false
      state.checkpointAt = performance.now()
    }
    const items = this.#queue.slice(0, BATCH_EVENTS)
    for (const { event, time } of items) {
      const entry = sealEntry(event, { seq: state.seq + 1, time, prev: state.head }, this.#keyring)
      entries.push(entry)
      state.seq = entry.seq
      state.head = entry.hash
      state.sinceCheckpoint++
      state.unsigned = true
      if (this.#signer !== undefined && state.sinceCheckpoint >= this.#everyEntries) checkpoint(this.#signer)
    }
    if (this.#signer !== undefined && state.unsigned) {
      if (this.#finalCheckpoint || performance.now() - state.checkpointAt >= this.#everyMs) checkpoint(this.#signer)
    }
    return { entries, events: items.length, checkpoints, after: state }
  }

  /** Append the batch; on a retry, only what the storage does not hold yet. */
  async #append(batch: Batch, retrying: boolean): Promise<void> {
    let rest = batch.entries
    if (retrying) rest = rest.slice(landed(await this.#storage.last(), this.#chain, batch.entries))
    if (rest.length > 0) await this.#storage.append(rest)
  }

  #commit(batch: Batch): void {
    this.#chain = batch.after
    this.#queue.splice(0, batch.events)
    this.#written += batch.events
    this.#checkpoints += batch.checkpoints
    while (this.#blocked.length > 0 && this.#queue.length < this.#max) {
      const waiting = this.#blocked.shift() as { item: Queued; resolve: () => void }
      this.#queue.push(waiting.item)
      waiting.resolve()
    }
    if (this.#publish !== undefined) {
      for (const entry of batch.entries) if (entry.kind === 'checkpoint') this.#publishCheckpoint(entry)
    }
    for (let i = this.#flushes.length - 1; i >= 0; i--) {
      const flush = this.#flushes[i] as { upTo: number; resolve: () => void }
      if (flush.upTo <= this.#written) {
        this.#flushes.splice(i, 1)
        flush.resolve()
      }
    }
  }

  /** Hand the checkpoint to `publish` after the ones before it; a failure is reported, never thrown. */
  #publishCheckpoint(entry: CheckpointEntry): void {
    const publish = this.#publish as (checkpoint: CheckpointEntry) => void | Promise<void>
    this.#published = this.#published.then(async () => {
      if (this.#abandoned) return
      try {
        await publish(entry)
      } catch (error) {
        this.#report(new Error(`audit log: publishing checkpoint ${entry.seq} failed: ${asError(error).message}`))
      }
    })
  }

  #report(error: Error): void {
    try {
      this.#onError(error)
    } catch {
      // A throwing reporter must not stop the writer.
    }
  }

  /**
   * Run `attempt` until it succeeds, reporting each failure and backing off (100 ms, 200 ms, … up
   * to the max). Throws ABANDONED once close() gave up.
   */
  async #retrying<T>(attempt: (n: number) => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      if (this.#abandoned) throw ABANDONED
      try {
        return await attempt(n)
      } catch (error) {
        if (this.#abandoned) throw ABANDONED
        this.#errors++
        this.#report(asError(error))
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** n))
          this.#wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.#wake = undefined
      }
    }
  }

  /** A checkpoint at most everyMs after the first unsigned entry, even when nothing more is recorded. */
  #armCheckpointTimer(): void {
    if (this.#signer === undefined || !this.#chain.unsigned || this.#checkpointTimer !== undefined || this.#closing) {
      return
    }
    const wait = Math.max(0, this.#chain.checkpointAt + this.#everyMs - performance.now())
    this.#checkpointTimer = setTimeout(() => {
      this.#checkpointTimer = undefined
      this.#kick()
    }, wait)
    // Not a reason to keep the process alive: close() writes the last checkpoint.
    this.#checkpointTimer.unref()
  }
}

/**
 * How many of `entries` the storage already holds, judging by its last entry: none when it still
 * ends where the chain did, all up to the matching one otherwise. Anything else means someone else
 * appended: refuse to fork the chain (the error is reported and the attempt retried).
 */
function landed(last: AuditEntry | undefined, chain: ChainState, entries: readonly AuditEntry[]): number {
  const hash = last?.hash ?? GENESIS
  if (hash === chain.head) return 0
  const index = entries.findIndex((entry) => entry.hash === hash)
  if (index >= 0) return index + 1
  throw new AuditIntegrityError(
    last?.seq,
    `the storage's last entry is not the one this writer appended last (seq ${chain.seq}); is another writer appending to the same log?`,
  )
}

/** The last stored entry must be sound to chain on: well-formed, and its hash its own. */
function checkResumable(last: AuditEntry): void {
  const problem = entryShapeProblem(last)
  if (problem !== undefined) throw new AuditIntegrityError(undefined, `the last stored entry is not valid: ${problem}`)
  const { hash, ...unhashed } = last
  if (entryHash(unhashed) !== hash) {
    throw new AuditIntegrityError(last.seq, 'the last stored entry does not hash to its `hash`: it was modified')
  }
}

/** A copy of the event as JSON has it now: a later change by the caller does not change the record. */
function snapshot(event: AuditEvent): AuditEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event) || typeof event.type !== 'string') {
    throw new TypeError('an audit event must be an object with a string `type`')
  }
  const json = JSON.stringify(event)
  return JSON.parse(json) as AuditEvent
}

/** Thrown inside the writer once close() gave up, to end it. */
const ABANDONED = new Error('the audit log gave up at close')

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function warn(error: Error): void {
  process.emitWarning(error, { code: 'IDEM_AUDIT_WRITE' })
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`AuditLog: ${name} must be an integer >= 1, got ${value}`)
  return value
}

function positiveNumber(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`AuditLog: ${name} must be a number > 0, got ${value}`)
  return value
}
