// PostgresStore: records in a PostgreSQL table, on a pg Pool or Client the user passes in. Every
// operation is one round trip; begin and the batches run as plpgsql functions installed by
// ensureSchema() (see postgres-functions.ts for why, and for the race timeline).

import { randomUUID } from 'node:crypto'
import { BaseStore } from '../../contract/base-store.js'
import { StoreClient } from '../../contract/store-client.js'
import { factoryOrClientWith, readStoreOptions } from '../../contract/store-options.js'
import { leaseLost } from '../../contract/transitions.js'
import type {
  BeginItem,
  BeginResult,
  CompleteItem,
  CompleteManyOutcome,
  IdempotencyRecord,
} from '../../contract/types.js'
import type { PgConnection, PgQueryable, PgQueryResult } from '../../drivers/pg.js'
import { StoreUnavailableError } from '../../errors.js'
import type { Inbox, InboxStore } from '../../sql/core/inbox.js'
import { storeError } from './postgres-errors.js'
import { postgresInbox } from './postgres-inbox.js'
import { type PostgresNames, postgresNames } from './postgres-names.js'
import { FunctionPresence } from './postgres-presence.js'
import { type BeginRow, toBeginResult } from './postgres-rows.js'
import { postgresSchema } from './postgres-schema.js'
import { type PostgresStatements, postgresStatements } from './postgres-sql.js'

interface PostgresStoreSettings {
  /** Default `public`. Letters, digits and `_`; quoted, so case is kept. */
  schema?: string
  /** Default `idem_records`. Letters, digits and `_`, at most 49 characters. */
  table?: string
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. */
  maxResultBytes?: number
}

export type PostgresStoreOptions = PostgresStoreSettings &
  (
    | {
        /**
         * A pg `Pool` (or a connected `Client`) that you own and end yourself; or a factory
         * `() => pool`, called on first use, whose pool is the store's: ended by `close()`.
         */
        client: PgConnection
        pool?: undefined
      }
    | {
        /** @deprecated Use `client` (same meaning). */
        pool: PgConnection
        client?: undefined
      }
  )

const OPTIONS = {
  store: 'PostgresStore',
  client: 'a pg Pool or Client, or a factory () => pool',
  accepts: factoryOrClientWith(['query']),
  known: ['client', 'schema', 'table', 'maxResultBytes'],
  renamed: { pool: 'client' },
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

/**
 * Records in a PostgreSQL table, on a pg Pool. Every operation is one round trip.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { Idempotency } from 'idem'
 * import { PostgresStore } from 'idem/postgres'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const store = new PostgresStore({ client: pool }) // yours: end it yourself
 * await store.ensureSchema()
 * const idem = new Idempotency({ store })
 * ```
 */
export class PostgresStore extends BaseStore implements InboxStore {
  #inbox: Inbox | undefined
  readonly names: PostgresNames
  readonly #sql: PostgresStatements
  readonly #presence: FunctionPresence
  readonly #client: StoreClient<PgQueryable>

  constructor(options: PostgresStoreOptions) {
    const o = readStoreOptions<PostgresStoreSettings & { client: PgConnection }>(options, OPTIONS)
    super('PostgresStore', o.maxResultBytes)
    this.names = postgresNames({ schema: o.schema, table: o.table })
    this.#sql = postgresStatements(this.names)
    this.#presence = new FunctionPresence(this.#sql.hasLaterFunctions)
    this.#client = new StoreClient<PgQueryable>(
      o.client,
      (error) =>
        new StoreUnavailableError(`PostgresStore could not create its pool: ${(error as Error)?.message}`, {
          cause: error,
        }),
    )
    // begin_many and complete_many are one statement each: the calls of a tick share one.
    this.batchPerTick({ begins: true, completes: true })
  }

  /** Claim and completion as statements on a caller's transaction (`idem.transaction`). */
  get inbox(): Inbox {
    this.#inbox ??= postgresInbox(this.names, this.#sql, this.#presence)
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
    // A check made before (on a schema without them) would otherwise keep the old statements.
    this.#presence.markPresent()
  }

  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const { rows } = await this.#query('begin', this.#sql.begin, [id, fingerprint, randomUUID(), leaseMs, ttlMs])
    return toBeginResult(rows[0] as BeginRow)
  }

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const params = [id, token, Buffer.from(result, 'utf8'), ttlMs]
    const asFunction = await this.#presence.check(async (text) => (await this.#query('complete', text)).rows)
    if (asFunction) {
      const { rows } = await this.#query('complete', this.#sql.completeCall, params)
      if (rows[0]?.done !== 1) throw leaseLost(id, 'complete')
      return
    }
    const done = await this.#query('complete', this.#sql.complete, params)
    if (done.rowCount !== 1) throw leaseLost(id, 'complete')
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    const done = await this.#query('release', this.#sql.release, [id, token])
    if (done.rowCount !== 1) throw leaseLost(id, 'release')
  }

  protected async doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    const { rows } = await this.#query('extend', this.#sql.extend, [id, token, leaseMs])
    if (rows.length !== 1) throw leaseLost(id, 'extend')
    return Number(rows[0].lease_until)
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    const { rows } = await this.#query('get', this.#sql.get, [id])
    return rows.length === 0 ? null : toRecord(rows[0] as RecordRow)
  }

  protected async doDelete(id: string): Promise<boolean> {
    const { rows } = await this.#query('delete', this.#sql.delete, [id])
    return rows.length === 1 && rows[0].live === true
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const { rows } = await this.#query('beginMany', this.#sql.beginMany, [
      items.map((item) => item.id),
      items.map((item) => item.fingerprint),
      items.map(() => randomUUID()),
      leaseMs,
      ttlMs,
    ])
    return (rows as BeginRow[]).map(toBeginResult)
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    // An oversize result is never sent: NULL tells the function to report too_large (if owned).
    const results = items.map((item) => (this.tooLarge(item.result) ? null : Buffer.from(item.result, 'utf8')))
    const { rows } = await this.#query('completeMany', this.#sql.completeMany, [
      items.map((item) => item.id),
      items.map((item) => item.token),
      results,
      ttlMs,
    ])
    return rows.map((row: { outcome: CompleteManyOutcome }) => row.outcome)
  }

  protected async doSweep(limit: number): Promise<number> {
    return (await this.#query('sweep', this.#sql.sweep, [limit])).rowCount ?? 0
  }

  /** End the pool if the store made it (through a factory); one passed in is left alone. */
  protected async doClose(): Promise<void> {
    await this.#client.close((pool) => pool.end?.())
  }

  protected override describe(): string {
    return `PostgresStore (${this.names.qualifiedTable})`
  }

  async #query(operation: string, text: string, values?: unknown[]): Promise<PgQueryResult> {
    if (this.closed) throw this.closedError()
    const pool = this.#client.current ?? (await this.#client.open())
    try {
      return await pool.query(text, values)
    } catch (error) {
      throw storeError(error, operation, pool)
    }
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
