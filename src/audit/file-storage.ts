// The audit log in a file: JSON Lines, one entry per line, only ever appended to.
//
// Durability (`sync`), decided per storage and stated here because it is the whole contract:
//   'always'    every append is written in one write() and fsynced (fdatasync) before its promise
//               resolves: a resolved append survives a process crash and an OS crash or power cut.
//   'interval'  every append is written before its promise resolves, and fsynced at most every
//               `syncIntervalMs` (default 1000) after it: a process crash loses nothing that was
//               appended (the bytes are in the kernel), an OS crash or power cut may lose up to the
//               last interval. A failed background fsync is raised by the next append or close.
//   'none'      written, never fsynced by Idem: the OS decides when the bytes reach the disk.
// A new file's directory entry is fsynced too (unless 'none'), or the whole file could vanish.
//
// A torn tail: a crash in the middle of an append (SIGKILL during a large write, a power cut)
// leaves a last line without its newline, or with bytes that are not JSON. Reading (`read`,
// `last`) never changes the file: `last()` skips such a line, `read()` yields it as
// `{ torn, position }` so `idem audit verify` reports it. Writing is where the choice is made:
// before its first append, the storage MOVES the torn tail aside into `<path>.torn-<timestamp>`
// (written and fsynced first, then the log truncated to its last complete line) and reports it
// through `onTornTail` and `tornTailOnOpen`. The alternative — appending after it on a new line —
// would leave a bad line in the middle of the log for ever, and every later verification would
// fail on it; moving it keeps the log verifiable and the bytes available to an operator. The torn
// line was never acknowledged (its append did not resolve), so no acknowledged entry is removed.
// (A chain cut short by this can only lose entries after the last checkpoint, which `verify`
// counts as unsigned.)
//
// `read()` positions are 1-based line numbers; it throws ENOENT for a missing file, where `last()`
// answers undefined (a log not yet written). One writer per file: two processes appending to one
// file would interleave their chains.

import { constants, createReadStream } from 'node:fs'
import { type FileHandle, open, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { AuditIntegrityError } from './errors.js'
import type { AuditEntry, AuditStorage } from './types.js'

export type FileSyncPolicy = 'always' | 'interval' | 'none'

/** What was moved aside before the first append. */
export interface TornTail {
  /** The log file. */
  path: string
  /** Where the torn bytes are now. */
  movedTo: string
  /** Byte offset in the log where the torn tail began (the log's length now). */
  offset: number
  /** How many bytes were moved. */
  bytes: number
}

export interface FileAuditStorageOptions {
  path: string
  /** Default 'always'. See the top of file-storage.ts. */
  sync?: FileSyncPolicy
  /** For sync 'interval': the longest time between an append and its fsync. Default 1000. */
  syncIntervalMs?: number
  /** Called once, before the first append, when a torn tail was moved aside. */
  onTornTail?: (tail: TornTail) => void
}

/** One line read back: the parsed JSON object, or the text when it is not one (a torn line). */
type Line = { kind: 'object'; value: AuditEntry } | { kind: 'torn'; text: string }

/** Bytes read per step by `last()` and the torn-tail check, from the end of the file backwards. */
const TAIL_CHUNK = 64 * 1024
const NEWLINE = 0x0a

export class FileAuditStorage implements AuditStorage {
  readonly path: string
  readonly sync: FileSyncPolicy
  readonly syncIntervalMs: number
  /** Set before the first append when a torn tail was moved aside; undefined otherwise. */
  tornTailOnOpen: TornTail | undefined

  readonly #onTornTail: ((tail: TornTail) => void) | undefined
  #handle: Promise<FileHandle> | undefined
  /** Appends and close run one after another, in call order. */
  #queue: Promise<unknown> = Promise.resolve()
  /** The file's length after the last successful append: where a failed append is cut back to. */
  #goodSize = 0
  /** A failed append could not be cut back: try again before the next write. */
  #mustRestore = false
  #syncs = 0
  #lastSyncAt = 0
  #syncTimer: NodeJS.Timeout | undefined
  #backgroundSync: Promise<void> | undefined
  #syncError: unknown
  #closed = false

  constructor(options: FileAuditStorageOptions) {
    if (typeof options.path !== 'string' || options.path === '')
      throw new TypeError('FileAuditStorage: path is required')
    const sync = options.sync ?? 'always'
    if (sync !== 'always' && sync !== 'interval' && sync !== 'none') {
      throw new TypeError(`FileAuditStorage: sync must be 'always', 'interval' or 'none', got ${JSON.stringify(sync)}`)
    }
    const interval = options.syncIntervalMs ?? 1000
    if (!Number.isFinite(interval) || interval < 0) {
      throw new TypeError(`FileAuditStorage: syncIntervalMs must be a number >= 0, got ${interval}`)
    }
    this.path = options.path
    this.sync = sync
    this.syncIntervalMs = interval
    this.#onTornTail = options.onTornTail
  }

  /** How many fsyncs of the log this storage has done (for monitoring and tests of the policy). */
  get syncs(): number {
    return this.#syncs
  }

  async last(): Promise<AuditEntry | undefined> {
    const reader = await openIfExists(this.path)
    if (reader === undefined) return undefined
    try {
      const tail = await scanTail(reader)
      if (tail.previous === undefined) return undefined
      if (tail.previous.line.kind === 'torn') {
        // Two bad lines in a row is not a crash mid-append: do not guess where the chain ends.
        throw new AuditIntegrityError(
          undefined,
          `${this.path}: the line before the torn tail (byte ${tail.previous.start}) is not an entry either`,
        )
      }
      return tail.previous.line.value
    } finally {
      await reader.close()
    }
  }

  append(entries: readonly AuditEntry[]): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw new Error(`FileAuditStorage ${this.path} is closed`)
      if (this.#syncError !== undefined) {
        const error = this.#syncError
        this.#syncError = undefined
        throw error
      }
      if (entries.length === 0) return
      const handle = await this.#open()
      if (this.#mustRestore) {
        await handle.truncate(this.#goodSize)
        this.#mustRestore = false
      }
      const bytes = Buffer.from(entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''), 'utf8')
      try {
        await writeAll(handle, bytes)
        if (this.sync === 'always') await this.#fsync(handle)
      } catch (error) {
        // Leave the file as it was before this call, so that a retry of the same entries does
        // not write them twice or after a partial line. O_APPEND writes land at the end whatever
        // the length, so cutting back is safe; if even that fails, the next append tries again.
        this.#mustRestore = true
        await handle.truncate(this.#goodSize).then(
          () => {
            this.#mustRestore = false
          },
          () => {},
        )
        throw error
      }
      this.#goodSize += bytes.length
      if (this.sync === 'interval') this.#scheduleSync(handle)
    })
  }

  async *read(): AsyncIterable<AuditEntry | { torn: string; position: number }> {
    // Positions are 1-based line numbers, as `sed -n 'Np'` or an editor shows them.
    let position = 0
    let pending: Buffer[] = []
    const stream = createReadStream(this.path, { highWaterMark: TAIL_CHUNK })
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let from = 0
        for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, from)) {
          pending.push(chunk.subarray(from, at))
          const line = parseLine(Buffer.concat(pending).toString('utf8'))
          pending = []
          position++
          yield line.kind === 'object' ? line.value : { torn: line.text, position }
          from = at + 1
        }
        if (from < chunk.length) pending.push(chunk.subarray(from))
      }
    } finally {
      stream.destroy()
    }
    // Bytes after the last newline: an append that did not finish, whatever they hold.
    const rest = Buffer.concat(pending)
    if (rest.length > 0) yield { torn: rest.toString('utf8'), position: position + 1 }
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return
      this.#closed = true
      if (this.#syncTimer !== undefined) clearTimeout(this.#syncTimer)
      this.#syncTimer = undefined
      await this.#backgroundSync
      if (this.#handle === undefined) return
      const handle = await this.#handle
      try {
        // 'interval' promises durability within an interval; closing is the end of the last one.
        if (this.sync === 'interval') await this.#fsync(handle)
      } finally {
        await handle.close()
      }
      const error = this.#syncError
      this.#syncError = undefined
      if (error !== undefined) throw error
    })
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Open for appending (once), after moving a torn tail aside. Retried on the next call if it fails. */
  #open(): Promise<FileHandle> {
    if (this.#handle === undefined) {
      this.#handle = this.#openForAppend()
      this.#handle.catch(() => {
        this.#handle = undefined
      })
    }
    return this.#handle
  }

  async #openForAppend(): Promise<FileHandle> {
    const existed = await stat(this.path).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false
        throw error
      },
    )
    const handle = await open(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640)
    try {
      if (!existed && this.sync !== 'none') await fsyncDirectory(dirname(this.path))
      await this.#moveTornTail(handle)
      this.#goodSize = (await handle.stat()).size
      return handle
    } catch (error) {
      await handle.close().catch(() => {})
      throw error
    }
  }

  async #moveTornTail(writer: FileHandle): Promise<void> {
    const reader = await open(this.path, 'r')
    let torn: { start: number; bytes: Buffer } | undefined
    try {
      const tail = await scanTail(reader)
      if (tail.torn !== undefined) {
        const bytes = Buffer.alloc(tail.size - tail.torn.start)
        await readAll(reader, bytes, tail.torn.start)
        torn = { start: tail.torn.start, bytes }
      }
    } finally {
      await reader.close()
    }
    if (torn === undefined) return
    const movedTo = `${this.path}.torn-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`
    // Copy first and make the copy durable; only then cut the log. A crash in between leaves the
    // bytes in both places, and the next open moves them again: never in neither.
    const copy = await open(movedTo, 'wx', 0o640)
    try {
      await writeAll(copy, torn.bytes)
      await copy.sync()
    } finally {
      await copy.close()
    }
    await fsyncDirectory(dirname(this.path))
    await writer.truncate(torn.start)
    await writer.sync()
    const report: TornTail = { path: this.path, movedTo, offset: torn.start, bytes: torn.bytes.length }
    this.tornTailOnOpen = report
    this.#onTornTail?.(report)
  }

  async #fsync(handle: FileHandle): Promise<void> {
    this.#lastSyncAt = Date.now()
    await handle.datasync()
    this.#syncs++
  }

  /** For 'interval': one fsync at most every syncIntervalMs, after the appends that need it. */
  #scheduleSync(handle: FileHandle): void {
    if (this.#syncTimer !== undefined) return
    const wait = Math.max(0, this.#lastSyncAt + this.syncIntervalMs - Date.now())
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined
      const previous = this.#backgroundSync ?? Promise.resolve()
      this.#backgroundSync = previous.then(() =>
        this.#fsync(handle).catch((error: unknown) => {
          this.#syncError = error
        }),
      )
    }, wait)
    // A pending fsync must not keep the process alive: the bytes are in the kernel already.
    this.#syncTimer.unref()
  }
}

interface TailLine {
  start: number
  line: Line
}

/**
 * The end of the log, read backwards in chunks (never the whole file): the torn tail if there is
 * one — the bytes after the last newline, or else a last line that is not a JSON object — and the
 * line before it (which a caller must find to be an entry: one torn line is a crash, two are not).
 */
async function scanTail(
  reader: FileHandle,
): Promise<{ size: number; torn: TailLine | undefined; previous: TailLine | undefined }> {
  const { size } = await reader.stat()
  let torn: TailLine | undefined
  for await (const segment of segmentsBackward(reader, size)) {
    if (!segment.terminated) {
      const text = segment.bytes.toString('utf8')
      if (segment.bytes.length > 0) torn = { start: segment.start, line: { kind: 'torn', text } }
      continue
    }
    const line = parseLine(segment.bytes.toString('utf8'))
    if (torn === undefined && line.kind === 'torn') {
      torn = { start: segment.start, line }
      continue
    }
    return { size, torn, previous: { start: segment.start, line } }
  }
  return { size, torn, previous: undefined }
}

/**
 * The file's newline-separated segments from the last to the first, with their byte offsets. The
 * last segment (after the final newline) is `terminated: false`, and empty when the file ends
 * with a newline. Splitting bytes on 0x0A is safe for UTF-8: the byte never occurs inside a
 * multi-byte character.
 */
async function* segmentsBackward(
  reader: FileHandle,
  size: number,
): AsyncGenerator<{ start: number; bytes: Buffer; terminated: boolean }> {
  let carried: Buffer[] = []
  let terminated = false
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - TAIL_CHUNK)
    const chunk = Buffer.alloc(end - start)
    await readAll(reader, chunk, start)
    let right = chunk.length
    for (let at = chunk.lastIndexOf(NEWLINE); at !== -1; at = at > 0 ? chunk.lastIndexOf(NEWLINE, at - 1) : -1) {
      yield { start: start + at + 1, bytes: Buffer.concat([chunk.subarray(at + 1, right), ...carried]), terminated }
      carried = []
      terminated = true
      right = at
    }
    carried.unshift(chunk.subarray(0, right))
    end = start
  }
  if (size > 0) yield { start: 0, bytes: Buffer.concat(carried), terminated }
}

function parseLine(text: string): Line {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { kind: 'torn', text }
  }
  // Any JSON object is handed on as an entry: verifyAuditLog says what is wrong with a bad one.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'torn', text }
  return { kind: 'object', value: value as AuditEntry }
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  // write() may write less than asked (a full disk, a signal); with O_APPEND the rest follows on.
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset)
    offset += bytesWritten
  }
}

async function readAll(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < into.length; ) {
    const { bytesRead } = await handle.read(into, offset, into.length - offset, position + offset)
    if (bytesRead === 0) throw new Error('the audit log file shrank while it was read')
    offset += bytesRead
  }
}

/** Make a new directory entry durable. Not every platform can open a directory (Windows): best effort there. */
async function fsyncDirectory(path: string): Promise<void> {
  let dir: FileHandle
  try {
    dir = await open(path, 'r')
  } catch {
    return
  }
  try {
    await dir.sync()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error
  } finally {
    await dir.close()
  }
}
