// SqliteStore: the embedded default, on better-sqlite3. Several processes may share one
// database file: every write that depends on a read runs in a BEGIN IMMEDIATE transaction,
// which takes SQLite's single write lock before it reads, so two claims can never interleave.

import { randomUUID } from 'node:crypto'
import { BaseStore } from '../../contract/base-store.js'
import { type Duration, toMs } from '../../contract/duration.js'
import { StoreClient } from '../../contract/store-client.js'
import { factoryOrClientWith, readStoreOptions } from '../../contract/store-options.js'
import { decideBegin, isExpired, leaseLost } from '../../contract/transitions.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
} from '../../contract/types.js'
import type { SqliteDatabase, SqliteTransaction } from '../../drivers/better-sqlite3.js'
import { StoreUnavailableError } from '../../errors.js'
import { transactionsInFlight } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import type { Inbox, InboxStore } from '../../sql/core/inbox.js'
import { sqliteInbox } from './sqlite-inbox.js'
import { assertSqliteIdentifier, DEFAULT_SQLITE_TABLE, sqliteSchema } from './sqlite-schema.js'
import {
  openDatabase,
  prepareStatements,
  type Row,
  type SqliteStatements,
  toRecord,
  transaction,
} from './sqlite-statements.js'

/** A better-sqlite3 Database, a factory for one, or a file name. */
export type SqliteClientOption = SqliteDatabase | (() => SqliteDatabase) | string

interface SqliteStoreSettings {
  /** Default `idem_records`. */
  table?: string
  /**
   * Milliseconds since the epoch; inject one in tests. Default `Date.now`: SQLite is embedded,
   * so its clock is this machine's, shared by every process that opens the file.
   */
  clock?: () => number
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
  /** How long a writer waits for another process's lock before failing: ms or '5s'. Default 5 s; 0 fails at once. */
  busyTimeout?: Duration
  /** @deprecated Use `busyTimeout`. */
  busyTimeoutMs?: number
}

export type SqliteStoreOptions = SqliteStoreSettings &
  (
    | {
        /**
         * A better-sqlite3 Database you own (the store never closes it); or a factory `() => db`,
         * or a file name to open, which make the database the store's: closed by `close()`. A
         * file name also gets the table (`ensureSchema()`) on construction.
         */
        client: SqliteClientOption
        database?: undefined
      }
    | {
        /** @deprecated Use `client`. Under this old name a factory's database stays yours, as before. */
        database: SqliteClientOption
        client?: undefined
      }
  )

const OPTIONS = {
  store: 'SqliteStore',
  client: 'a better-sqlite3 Database or a file name',
  accepts: factoryOrClientWith(['prepare', 'pragma'], true),
  known: ['client', 'table', 'clock', 'maxResultBytes', 'busyTimeout'],
  renamed: { database: 'client', busyTimeoutMs: 'busyTimeout' },
}

/**
 * Records in a SQLite file, on better-sqlite3: the embedded default. Several processes may share
 * one file.
 *
 * @example
 * ```ts
 * import { Idempotency } from 'idem'
 * import { SqliteStore } from 'idem/sqlite'
 *
 * const store = new SqliteStore({ client: 'idem.db' }) // opened, and closed by store.close()
 * const idem = new Idempotency({ store })
 * ```
 */
export class SqliteStore extends BaseStore implements InboxStore {
  #inbox: Inbox | undefined
  readonly db: SqliteDatabase
  readonly table: string
  readonly #client: StoreClient<SqliteDatabase>
  readonly #clock: () => number
  #statements: SqliteStatements | undefined
  readonly #beginTx: SqliteTransaction<[string, string, number, number], BeginResult>
  readonly #beginManyTx: SqliteTransaction<[readonly BeginItem[], number, number], BeginResult[]>
  readonly #completeManyTx: SqliteTransaction<[readonly CompleteItem[], number], CompleteManyOutcome[]>

  constructor(options: SqliteStoreOptions) {
    const o = readStoreOptions<SqliteStoreSettings & { client: SqliteClientOption }>(options, OPTIONS)
    super('SqliteStore', o.maxResultBytes)
    this.table = assertSqliteIdentifier(o.table ?? DEFAULT_SQLITE_TABLE)
    const busyTimeout = o.busyTimeout === 0 ? 0 : toMs(o.busyTimeout ?? 5000, 'busyTimeout')
    const { client } = o
    // Before `client`, a factory given as `database` made a database the store did not close.
    const legacyFactory = (options as { database?: unknown }).database === client
    const unavailable = (cause: unknown) =>
      cause instanceof StoreUnavailableError
        ? cause
        : new StoreUnavailableError(`SqliteStore could not open its database: ${(cause as Error)?.message ?? cause}`, {
            cause,
          })
    this.#client =
      typeof client === 'string'
        ? new StoreClient<SqliteDatabase>(() => openDatabase(client), unavailable)
        : new StoreClient<SqliteDatabase>(client, unavailable, typeof client === 'function' && !legacyFactory)
    // The database is needed at once: the locked sections below are built on it.
    this.db = this.#client.openSync()
    this.#clock = o.clock ?? Date.now
    this.db.pragma(`busy_timeout = ${busyTimeout}`)
    if (typeof client === 'string') this.ensureSchema()
    // Each locked section reads the clock once it holds the lock: a wait on another process's
    // lock (up to busyTimeout) must not shorten the lease it grants.
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
        if (this.tooLarge(item.result)) {
          return this.#ownedRow(item.id, item.token, now) ? 'too_large' : 'lease_lost'
        }
        return this.#sql.complete.run(item.result, now, now + ttlMs, item.id, item.token, now).changes === 1
          ? 'completed'
          : 'lease_lost'
      })
    })
  }

  /** Statements are prepared on first use, so that a store can be built before `ensureSchema()`. */
  get #sql(): SqliteStatements {
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

  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
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

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    const now = this.#clock()
    // One conditional UPDATE: only the current owner of a live in-progress claim matches.
    if (this.#sql.complete.run(result, now, now + ttlMs, id, token, now).changes !== 1) {
      throw leaseLost(id, 'complete')
    }
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    if (this.#sql.release.run(id, token, this.#clock()).changes !== 1) throw leaseLost(id, 'release')
  }

  protected async doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    const now = this.#clock()
    const leaseUntil = now + leaseMs
    if (this.#sql.extend.run(leaseUntil, now, leaseUntil, id, token, now).changes !== 1) {
      throw leaseLost(id, 'extend')
    }
    return leaseUntil
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    const record = toRecord(this.#sql.select.get(id) as Row | undefined)
    return record === null || isExpired(record, this.#clock()) ? null : record
  }

  protected async doDelete(id: string): Promise<boolean> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    const removed = this.#sql.delete.get(id) as { expires_at: number } | undefined
    return removed !== undefined && removed.expires_at > this.#clock()
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    return this.#beginManyTx.immediate(items, leaseMs, ttlMs)
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    return this.#completeManyTx.immediate(items, ttlMs)
  }

  protected async doSweep(limit: number): Promise<number> {
    for (let f = this.#ready(); f !== undefined; f = this.#ready()) await f
    return this.#sql.sweep.run(this.#clock(), limit).changes
  }

  /** Close the database if the store opened it (a file name or a factory); one passed in is left open. */
  protected async doClose(): Promise<void> {
    await this.#client.close((db) => (db.open ? db.close() : undefined))
  }

  protected override describe(): string {
    return `SqliteStore (${this.table})`
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

  /**
   * Undefined when the connection is free for the store; else what to wait for first: the
   * transactions Idem has open or queued on a connection shared with transaction mode. A
   * database closed behind the store's back fails as a closed store.
   */
  #ready(): Promise<unknown> | undefined {
    if (!this.db.open || this.closed) throw this.closedError()
    return transactionsInFlight(this.db)
  }
}
