// SqliteStore: the embedded default, on better-sqlite3. Several processes may share one
// database file: every write that depends on a read runs in a BEGIN IMMEDIATE transaction,
// which takes SQLite's single write lock before it reads, so two claims can never interleave.

import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { decideBegin, isExpired, leaseLost } from '../../contract/transitions.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
} from '../../contract/types.js'
import {
  assertBeginArgs,
  assertBeginManyArgs,
  assertCompleteManyArgs,
  assertLimit,
  assertOwnerArgs,
  assertPositiveMs,
  assertRecordId,
  assertResult,
  DEFAULT_MAX_RESULT_BYTES,
  resultBytes,
} from '../../contract/validate.js'
import { StoreUnavailableError } from '../../errors.js'
import { transactionsInFlight } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import type { Inbox, InboxStore } from '../../sql/inbox.js'
import type { SqliteDatabase, SqliteTransaction } from './sqlite-driver.js'
import { sqliteInbox } from './sqlite-inbox.js'
import { assertSqliteIdentifier, DEFAULT_SQLITE_TABLE, sqliteSchema } from './sqlite-schema.js'

export interface SqliteStoreOptions {
  /** A better-sqlite3 Database, a factory for one, or a file name to open (closed with the store). */
  database: SqliteDatabase | (() => SqliteDatabase) | string
  /** Default `idem_records`. */
  table?: string
  /**
   * Milliseconds since the epoch; inject one in tests. Default `Date.now`: SQLite is embedded,
   * so its clock is this machine's, shared by every process that opens the file.
   */
  clock?: () => number
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
  /** How long a writer waits for another process's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number
}

interface Row {
  id: string
  state: 'in_progress' | 'completed'
  fingerprint: string
  token: string | null
  lease_until: number | null
  attempt: number
  result: string | null
  created_at: number
  updated_at: number
  expires_at: number
}

export class SqliteStore implements InboxStore {
  #inbox: Inbox | undefined
  readonly db: SqliteDatabase
  readonly table: string
  readonly #ownsDatabase: boolean
  readonly #clock: () => number
  readonly #maxResultBytes: number
  #statements: ReturnType<typeof prepareStatements> | undefined
  readonly #beginTx: SqliteTransaction<[string, string, number, number], BeginResult>
  readonly #beginManyTx: SqliteTransaction<[readonly BeginItem[], number, number], BeginResult[]>
  readonly #completeManyTx: SqliteTransaction<[readonly CompleteItem[], number], CompleteManyOutcome[]>
  #closed = false

  constructor(options: SqliteStoreOptions) {
    const { database } = options
    this.#ownsDatabase = typeof database === 'string'
    this.db =
      typeof database === 'string' ? openDatabase(database) : typeof database === 'function' ? database() : database
    this.table = assertSqliteIdentifier(options.table ?? DEFAULT_SQLITE_TABLE)
    this.#clock = options.clock ?? Date.now
    this.#maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
    if (this.#ownsDatabase) this.ensureSchema()
    // Each locked section reads the clock once it holds the lock: a wait on another process's
    // lock (up to busyTimeoutMs) must not shorten the lease it grants.
    this.#beginTx = transaction(this.db, (id: string, fingerprint: string, leaseMs: number, ttlMs: number) =>
      this.#beginLocked(id, fingerprint, leaseMs, ttlMs, this.#clock()),
    )
    this.#beginManyTx = transaction(this.db, (items: readonly BeginItem[], leaseMs: number, ttlMs: number) => {
      const now = this.#clock()
      return items.map((item) => this.#beginLocked(item.id, item.fingerprint, leaseMs, ttlMs, now))
    })
    this.#completeManyTx = transaction(this.db, (items: readonly CompleteItem[], ttlMs: number) => {
      const now = this.#clock()
      return items.map((item): CompleteManyOutcome => {
        if (resultBytes(item.result) > this.#maxResultBytes) {
          return this.#ownedRow(item.id, item.token, now) ? 'too_large' : 'lease_lost'
        }
        return this.#sql.complete.run(item.result, now, now + ttlMs, item.id, item.token, now).changes === 1
          ? 'completed'
          : 'lease_lost'
      })
    })
  }

  /** Statements are prepared on first use, so that a store can be built before `ensureSchema()`. */
  get #sql(): ReturnType<typeof prepareStatements> {
    this.#statements ??= prepareStatements(this.db, this.table)
    return this.#statements
  }

  /** Claim and completion as statements on a caller's transaction (`idem.transaction`). */
  get inbox(): Inbox {
    this.#inbox ??= sqliteInbox(this.table, this.#clock)
    return this.#inbox
  }

  /** Create the table and index if missing, and switch the file to WAL (readers never block the writer). */
  ensureSchema(): void {
    this.db.pragma('journal_mode = WAL')
    this.db.exec(sqliteSchema(this.table))
  }

  async begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertBeginArgs(id, fingerprint, leaseMs, ttlMs)
    const now = this.#clock()
    // Read first, without the write lock: completed, mismatched and live in-progress records are
    // answered from this snapshot (each is a correct answer at the instant of the read).
    const existing = toRecord(this.#sql.select.get(id) as Row | undefined)
    if (existing === null) {
      // Absent: one INSERT claims it; if a racer inserted first, fall through to the locked path.
      const token = randomUUID()
      const expiresAt = now + Math.max(ttlMs, leaseMs)
      if (this.#sql.insert.run(id, fingerprint, token, now + leaseMs, now, now, expiresAt).changes === 1) {
        return { outcome: 'acquired', token, attempt: 1, recovered: false, leaseUntil: now + leaseMs }
      }
    } else {
      const decision = decideBegin(existing, id, fingerprint, leaseMs, ttlMs, now, randomUUID)
      if (decision.write === null) return decision.result
    }
    // Expired, lapsed, or lost a race: decide again under the write lock.
    return this.#beginTx.immediate(id, fingerprint, leaseMs, ttlMs)
  }

  async complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertOwnerArgs(id, token)
    assertPositiveMs('ttlMs', ttlMs)
    assertResult(result, this.#maxResultBytes, id)
    const now = this.#clock()
    // One conditional UPDATE: only the current owner of a live in-progress claim matches.
    if (this.#sql.complete.run(result, now, now + ttlMs, id, token, now).changes !== 1) {
      throw leaseLost(id, 'complete')
    }
  }

  async release(id: string, token: string): Promise<void> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertOwnerArgs(id, token)
    if (this.#sql.release.run(id, token, this.#clock()).changes !== 1) throw leaseLost(id, 'release')
  }

  async extend(id: string, token: string, leaseMs: number): Promise<number> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertOwnerArgs(id, token)
    assertPositiveMs('leaseMs', leaseMs)
    const now = this.#clock()
    const leaseUntil = now + leaseMs
    if (this.#sql.extend.run(leaseUntil, now, leaseUntil, id, token, now).changes !== 1) {
      throw leaseLost(id, 'extend')
    }
    return leaseUntil
  }

  async get(id: string): Promise<IdempotencyRecord | null> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertRecordId(id)
    const record = toRecord(this.#sql.select.get(id) as Row | undefined)
    return record === null || isExpired(record, this.#clock()) ? null : record
  }

  async delete(id: string): Promise<boolean> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertRecordId(id)
    const removed = this.#sql.delete.get(id) as { expires_at: number } | undefined
    return removed !== undefined && removed.expires_at > this.#clock()
  }

  async beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertBeginManyArgs(items, leaseMs, ttlMs)
    if (items.length === 0) return []
    return this.#beginManyTx.immediate(items, leaseMs, ttlMs)
  }

  async completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertCompleteManyArgs(items, ttlMs)
    if (items.length === 0) return []
    return this.#completeManyTx.immediate(items, ttlMs)
  }

  async sweep(limit: number): Promise<number> {
    this.#checkOpen()
    for (let f = transactionsInFlight(this.db); f !== undefined; f = transactionsInFlight(this.db)) await f
    assertLimit(limit)
    return this.#sql.sweep.run(this.#clock(), limit).changes
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsDatabase && this.db.open) this.db.close()
  }

  /** `begin` under the write lock: re-read, decide, write. */
  #beginLocked(id: string, fingerprint: string, leaseMs: number, ttlMs: number, now: number): BeginResult {
    const existing = toRecord(this.#sql.select.get(id) as Row | undefined)
    const { result, write } = decideBegin(existing, id, fingerprint, leaseMs, ttlMs, now, randomUUID)
    if (write !== null) {
      this.#sql.upsert.run(
        write.id,
        write.state,
        write.fingerprint,
        write.token,
        write.leaseUntil,
        write.attempt,
        write.result,
        write.createdAt,
        write.updatedAt,
        write.expiresAt,
      )
    }
    return result
  }

  #ownedRow(id: string, token: string, now: number): boolean {
    const record = toRecord(this.#sql.select.get(id) as Row | undefined)
    return record !== null && !isExpired(record, now) && record.state === 'in_progress' && record.token === token
  }

  #checkOpen(): void {
    if (this.#closed || !this.db.open) throw new StoreUnavailableError(`SqliteStore (${this.table}) is closed`)
  }
}

function prepareStatements(db: SqliteDatabase, t: string) {
  // Parameters are positional; the comment above each statement gives their order.
  // A claim is owned by `token` while the record is in progress, holds that token and is not expired.
  const owned = `id = ? AND token = ? AND state = 'in_progress' AND expires_at > ?`
  return {
    select: db.prepare(`SELECT * FROM ${t} WHERE id = ?`),
    insert: db.prepare(
      `INSERT INTO ${t} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
       VALUES (?, 'in_progress', ?, ?, ?, 1, NULL, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    upsert: db.prepare(
      `INSERT INTO ${t} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint,
         token = excluded.token, lease_until = excluded.lease_until, attempt = excluded.attempt,
         result = excluded.result, created_at = excluded.created_at, updated_at = excluded.updated_at,
         expires_at = excluded.expires_at`,
    ),
    // complete(result, now, expiresAt, id, token, now)
    complete: db.prepare(
      `UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = ?, updated_at = ?, expires_at = ?
       WHERE ${owned}`,
    ),
    // release(id, token, now)
    release: db.prepare(`DELETE FROM ${t} WHERE ${owned}`),
    // extend(leaseUntil, now, leaseUntil, id, token, now): retention never ends before the lease.
    extend: db.prepare(
      `UPDATE ${t} SET lease_until = ?, updated_at = ?, expires_at = max(expires_at, ?) WHERE ${owned}`,
    ),
    delete: db.prepare(`DELETE FROM ${t} WHERE id = ? RETURNING expires_at`),
    // Bounded: the index on expires_at finds the oldest expired rows without a scan.
    sweep: db.prepare(
      `DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
    ),
  }
}

/** better-sqlite3's transaction wrapper, typed by the function it wraps. */
function transaction<A extends unknown[], R>(db: SqliteDatabase, fn: (...args: A) => R): SqliteTransaction<A, R> {
  return db.transaction(fn) as SqliteTransaction<A, R>
}

function toRecord(row: Row | undefined): IdempotencyRecord | null {
  if (row === undefined) return null
  return {
    id: row.id,
    state: row.state,
    fingerprint: row.fingerprint,
    token: row.token,
    leaseUntil: row.lease_until,
    attempt: row.attempt,
    result: row.result,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
  }
}

function openDatabase(filename: string): SqliteDatabase {
  const require = createRequire(import.meta.url)
  let Database: new (filename: string) => SqliteDatabase
  try {
    Database = require('better-sqlite3') as typeof Database
  } catch (cause) {
    throw new StoreUnavailableError('SqliteStore needs the better-sqlite3 package: npm install better-sqlite3', {
      cause,
    })
  }
  return new Database(filename)
}
