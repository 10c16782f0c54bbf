// PostgresStore: records in a PostgreSQL table, on a pg Pool or Client the user passes in. Every
// operation is one round trip; begin and the batches run as plpgsql functions installed by
// ensureSchema() (see postgres-functions.ts for why, and for the race timeline).

import { randomUUID } from 'node:crypto'
import { leaseLost } from '../../contract/transitions.js'
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
import type { Inbox, InboxStore } from '../../sql/inbox.js'
import type { PgConnection, PgQueryable, PgQueryResult } from './postgres-driver.js'
import { storeError } from './postgres-errors.js'
import { postgresInbox } from './postgres-inbox.js'
import { type BeginRow, toBeginResult } from './postgres-rows.js'
import { type PostgresNames, postgresNames, postgresSchema } from './postgres-schema.js'
import { type PostgresStatements, postgresStatements } from './postgres-sql.js'

export interface PostgresStoreOptions {
  /**
   * A pg `Pool` (or a connected `Client`) that you own and end yourself, or a factory for one,
   * called on first use; the store then owns that pool and ends it on `close()`.
   */
  pool: PgConnection
  /** Default `public`. Letters, digits and `_`; quoted, so case is kept. */
  schema?: string
  /** Default `idem_records`. Letters, digits and `_`, at most 49 characters. */
  table?: string
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
}

interface RecordRow {
  id: string
  state: 'in_progress' | 'completed'
  fingerprint: string
  token: string | null
  lease_until: string | null
  attempt: number
  result: Buffer | null
  created_at: string
  updated_at: string
  expires_at: string
}

export class PostgresStore implements InboxStore {
  #inbox: Inbox | undefined
  readonly names: PostgresNames
  readonly #sql: PostgresStatements
  readonly #connection: PgConnection
  readonly #ownsPool: boolean
  readonly #maxResultBytes: number
  #pool: PgQueryable | undefined
  #opening: Promise<PgQueryable> | undefined
  #closed = false

  constructor(options: PostgresStoreOptions) {
    if (options?.pool === undefined || options.pool === null) {
      throw new TypeError('PostgresStore needs a pg Pool or Client (or a factory for one) as `pool`')
    }
    this.names = postgresNames({ schema: options.schema, table: options.table })
    this.#sql = postgresStatements(this.names)
    this.#connection = options.pool
    this.#ownsPool = typeof options.pool === 'function'
    if (!this.#ownsPool) this.#pool = options.pool as PgQueryable
    this.#maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES
  }

  /** Claim and completion as statements on a caller's transaction (`idem.transaction`). */
  get inbox(): Inbox {
    this.#inbox ??= postgresInbox(this.names, this.#sql)
    return this.#inbox
  }

  /** Create the schema (unless `public`), table, index and functions if missing; safe to run concurrently. */
  async ensureSchema(): Promise<void> {
    const { schema, table } = this.names
    // One simple-protocol query runs as one implicit transaction: all of it or none. The advisory
    // lock serialises concurrent callers, which CREATE ... IF NOT EXISTS and CREATE OR REPLACE
    // alone do not (two of them can collide on the catalogs' unique indexes). It is per schema,
    // since stores on two tables of one schema both create the schema.
    const lockKey = `idem:${schema}`
    await this.#query(
      'ensureSchema',
      `SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(hashtextextended('${lockKey}', 0));
${postgresSchema({ schema, table })}`,
    )
  }

  async begin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    this.#checkOpen()
    assertBeginArgs(id, fingerprint, leaseMs, ttlMs)
    const { rows } = await this.#query('begin', this.#sql.begin, [id, fingerprint, randomUUID(), leaseMs, ttlMs])
    return toBeginResult(rows[0] as BeginRow)
  }

  async complete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    assertPositiveMs('ttlMs', ttlMs)
    assertResult(result, this.#maxResultBytes, id)
    const done = await this.#query('complete', this.#sql.complete, [id, token, Buffer.from(result, 'utf8'), ttlMs])
    if (done.rowCount !== 1) throw leaseLost(id, 'complete')
  }

  async release(id: string, token: string): Promise<void> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    const done = await this.#query('release', this.#sql.release, [id, token])
    if (done.rowCount !== 1) throw leaseLost(id, 'release')
  }

  async extend(id: string, token: string, leaseMs: number): Promise<number> {
    this.#checkOpen()
    assertOwnerArgs(id, token)
    assertPositiveMs('leaseMs', leaseMs)
    const { rows } = await this.#query('extend', this.#sql.extend, [id, token, leaseMs])
    if (rows.length !== 1) throw leaseLost(id, 'extend')
    return Number(rows[0].lease_until)
  }

  async get(id: string): Promise<IdempotencyRecord | null> {
    this.#checkOpen()
    assertRecordId(id)
    const { rows } = await this.#query('get', this.#sql.get, [id])
    return rows.length === 0 ? null : toRecord(rows[0] as RecordRow)
  }

  async delete(id: string): Promise<boolean> {
    this.#checkOpen()
    assertRecordId(id)
    const { rows } = await this.#query('delete', this.#sql.delete, [id])
    return rows.length === 1 && rows[0].live === true
  }

  async beginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    this.#checkOpen()
    assertBeginManyArgs(items, leaseMs, ttlMs)
    if (items.length === 0) return []
    const { rows } = await this.#query('beginMany', this.#sql.beginMany, [
      items.map((item) => item.id),
      items.map((item) => item.fingerprint),
      items.map(() => randomUUID()),
      leaseMs,
      ttlMs,
    ])
    return (rows as BeginRow[]).map(toBeginResult)
  }

  async completeMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    this.#checkOpen()
    assertCompleteManyArgs(items, ttlMs)
    if (items.length === 0) return []
    // An oversize result is never sent: NULL tells the function to report too_large (if owned).
    const results = items.map((item) =>
      resultBytes(item.result) > this.#maxResultBytes ? null : Buffer.from(item.result, 'utf8'),
    )
    const { rows } = await this.#query('completeMany', this.#sql.completeMany, [
      items.map((item) => item.id),
      items.map((item) => item.token),
      results,
      ttlMs,
    ])
    return rows.map((row: { outcome: CompleteManyOutcome }) => row.outcome)
  }

  async sweep(limit: number): Promise<number> {
    this.#checkOpen()
    assertLimit(limit)
    return (await this.#query('sweep', this.#sql.sweep, [limit])).rowCount ?? 0
  }

  /** Stop accepting operations; a pool the store built from a factory is ended, one passed in is left alone. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (!this.#ownsPool) return
    const pool = this.#pool ?? (await this.#opening?.catch(() => undefined))
    await pool?.end?.()
  }

  async #query(operation: string, text: string, values?: unknown[]): Promise<PgQueryResult> {
    this.#checkOpen()
    const pool = this.#pool ?? (await this.#open())
    try {
      return await pool.query(text, values)
    } catch (error) {
      throw storeError(error, operation, pool)
    }
  }

  /** Call the factory once; a failed call is retried by the next operation. */
  #open(): Promise<PgQueryable> {
    if (this.#opening === undefined) {
      const factory = this.#connection as () => PgQueryable | Promise<PgQueryable>
      const opening: Promise<PgQueryable> = Promise.resolve()
        .then(factory)
        .then(
          (pool) => {
            this.#pool = pool
            return pool
          },
          (error: unknown) => {
            if (this.#opening === opening) this.#opening = undefined
            throw new StoreUnavailableError(`PostgresStore could not create its pool: ${(error as Error)?.message}`, {
              cause: error,
            })
          },
        )
      this.#opening = opening
    }
    return this.#opening
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreUnavailableError(`PostgresStore (${this.names.qualifiedTable}) is closed`)
  }
}

function toRecord(row: RecordRow): IdempotencyRecord {
  return {
    id: row.id,
    state: row.state,
    fingerprint: row.fingerprint,
    token: row.token,
    leaseUntil: row.lease_until === null ? null : Number(row.lease_until),
    attempt: row.attempt,
    result: row.result === null ? null : row.result.toString('utf8'),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: Number(row.expires_at),
  }
}
