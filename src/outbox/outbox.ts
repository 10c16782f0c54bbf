// The transactional outbox: a message written in the caller's own SQL transaction, so that it
// exists exactly when the business change does. A relay (relay.ts) publishes it afterwards.

import { type Duration, positiveInteger, toMs } from '../contract/duration.js'
import { newMessageId } from '../producer/message-id.js'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../sql/core/executor.js'
import { DEFAULT_OUTBOX_TABLE, outboxNames, outboxSchema } from './outbox-schema.js'
import { outboxStatements } from './outbox-sql.js'

export interface OutboxOptions {
  /** The table, optionally schema-qualified (`'app.outbox'`). Default `'idem_outbox'`. */
  table?: string
}

export interface OutboxMessage<P = unknown> {
  /**
   * The message id consumers will see (and deduplicate on). Default: a new UUIDv7. Pass your own
   * to tie the message to something stable, such as `ctx.derivedKey('shipped')` inside a handler.
   */
  id?: string
  /** Stored as JSON and handed to the producer as `JSON.parse` gives it back. */
  payload: P
  /** The producer's destination (exchange/routing key, subject, stream, topic); its default when absent. */
  destination?: string
  headers?: Readonly<Record<string, string>>
}

export interface OutboxBacklog {
  /** Rows not yet confirmed by the broker (including rows waiting for a retry). */
  pending: number
  /** Rows that reached `maxAttempts`; they wait for `retryFailed` (or for you to delete them). */
  failed: number
  /** Age of the oldest pending row by the database's clock: the relay's lag. Null with no backlog. */
  oldestPendingMs: number | null
}

/** An executor, or a database to run one statement on in a transaction of its own. */
export type OutboxTarget = SqlExecutor | SqlDatabase<unknown>

const MESSAGE_ID = /^[\x20-\x7e]{1,255}$/

/**
 * The outbox table: messages added in the caller's transaction, published later by an `OutboxRelay`.
 *
 * @example
 * const outbox = new Outbox() // table 'idem_outbox'; outbox.schema(dialect) gives the DDL
 * await idem.transaction(db, { key: commandId }, async (_tx, ctx) => {
 *   await ctx.sql.execute('UPDATE orders SET status = ? WHERE id = ?', ['placed', orderId])
 *   await outbox.add(ctx.sql, { payload: { orderId }, destination: 'orders.placed' })
 * })
 */
export class Outbox {
  readonly table: string

  constructor(options: OutboxOptions = {}) {
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE
    outboxNames('postgres', this.table) // throws a TypeError now for a name that is not one
  }

  /** The DDL statements for `dialect`, for your migrations (each is IF NOT EXISTS). */
  schema(dialect: SqlDialect): string[] {
    return outboxSchema(dialect, this.table)
  }

  /** Create the table and its indexes if they are missing. On MySQL, DDL commits any open transaction. */
  async ensureSchema(target: OutboxTarget): Promise<void> {
    await using(target, async (sql) => {
      for (const statement of this.schema(sql.dialect)) await sql.execute(statement, [])
    })
  }

  /**
   * Write `message` with `sql`, which should be the executor of the transaction that makes the
   * business change (`ctx.sql` inside `idem.transaction`, or an adapter's executor on your own
   * transaction): the message then commits, or rolls back, with that change. Resolves to the
   * message id. Adding an id the outbox still holds changes nothing (the first message stays), so
   * a retried handler that adds under a stable id does not send twice.
   */
  async add<P>(sql: SqlExecutor, message: OutboxMessage<P>): Promise<string> {
    const row = encode(message)
    await this.#insert(sql, row)
    return row[0]
  }

  /** `add` for several messages, in order, on the same transaction. */
  async addMany(sql: SqlExecutor, messages: readonly OutboxMessage[]): Promise<string[]> {
    const rows = messages.map(encode)
    for (const row of rows) await this.#insert(sql, row)
    return rows.map((row) => row[0])
  }

  /** How far behind the relays are: pending and failed counts, and the oldest pending row's age. */
  backlog(target: OutboxTarget): Promise<OutboxBacklog> {
    return using(target, async (sql) => {
      const row = (await sql.execute(outboxStatements(sql.dialect, this.table).backlog, [])).rows[0] ?? {}
      return {
        pending: Number(row.pending ?? 0),
        failed: Number(row.failed ?? 0),
        oldestPendingMs: row.oldest_ms === null || row.oldest_ms === undefined ? null : Number(row.oldest_ms),
      }
    })
  }

  /** Put failed rows (all, or those with these ids) back in the queue with a fresh attempt budget. */
  retryFailed(target: OutboxTarget, ids: readonly string[] = []): Promise<number> {
    return using(target, async (sql) => {
      const statement = outboxStatements(sql.dialect, this.table).retryFailed(ids.length)
      return (await sql.execute(statement, ids)).affectedRows
    })
  }

  /** Delete up to `limit` sent rows confirmed more than `olderThan` ago; resolves to how many went. */
  sweep(target: OutboxTarget, olderThan: Duration, limit = 1000): Promise<number> {
    const ms = toMs(olderThan, 'olderThan')
    positiveInteger(limit, 'limit')
    return using(target, async (sql) => {
      const statement = outboxStatements(sql.dialect, this.table).sweep(limit)
      return (await sql.execute(statement, [ms])).affectedRows
    })
  }

  #insert(sql: SqlExecutor, row: EncodedRow): Promise<unknown> {
    if (sql === null || typeof sql !== 'object' || typeof sql.execute !== 'function') {
      throw new TypeError('outbox.add needs the SqlExecutor of your transaction (ctx.sql, or an adapter executor)')
    }
    return sql.execute(outboxStatements(sql.dialect, this.table).add, row)
  }
}

/** (id, destination, payload, headers), as the insert takes them. */
type EncodedRow = [string, string | null, string, string | null]

function encode(message: OutboxMessage): EncodedRow {
  if (message === null || typeof message !== 'object') throw new TypeError('An outbox message must be an object')
  const id = message.id ?? newMessageId()
  if (typeof id !== 'string' || !MESSAGE_ID.test(id)) {
    throw new TypeError(`A message id must be 1 to 255 printable ASCII characters, got ${JSON.stringify(id)}`)
  }
  let payload: string | undefined
  try {
    payload = JSON.stringify(message.payload)
  } catch (cause) {
    throw new TypeError(`The payload of message ${id} cannot be stored as JSON: ${(cause as Error).message}`, {
      cause,
    })
  }
  if (payload === undefined) throw new TypeError(`The payload of message ${id} cannot be stored as JSON`)
  const { destination, headers } = message
  if (destination !== undefined && (typeof destination !== 'string' || destination.length === 0)) {
    throw new TypeError(`The destination of message ${id} must be a non-empty string`)
  }
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw new TypeError(`The headers of message ${id} must be an object of strings`)
    }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') throw new TypeError(`Header "${name}" of message ${id} must be a string`)
    }
  }
  return [id, destination ?? null, payload, headers === undefined ? null : JSON.stringify(headers)]
}

/** Run `fn` on `target` itself (an executor) or in a short transaction of it (a database). */
function using<R>(target: OutboxTarget, fn: (sql: SqlExecutor) => Promise<R>): Promise<R> {
  if (target !== null && typeof target === 'object' && 'transaction' in target) {
    return target.transaction((_tx, sql) => fn(sql))
  }
  if (target === null || typeof target !== 'object' || typeof (target as SqlExecutor).execute !== 'function') {
    throw new TypeError('Pass a SqlExecutor or a SqlDatabase (fromPg, fromMysql2, fromBetterSqlite3, …)')
  }
  return fn(target as SqlExecutor)
}
