// MysqlStore: records in a MySQL 8 or MariaDB 10.11 table, through a mysql2 promise client.
// Every operation is one round trip: a single conditional statement, or the CALL of a stored
// procedure (mysql-procedures.ts) that decides, writes and answers on the server. Every time
// comparison uses the server's clock. Values travel as bytes (hex literals, hex inside JSON),
// so ids and results are exact whatever the connection's character set.

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
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
import type { MysqlClient, MysqlEndableClient } from '../../drivers/mysql2.js'
import { StoreUnavailableError } from '../../errors.js'
import type { Inbox, InboxStore } from '../../sql/core/inbox.js'
import { isRolledBack, storeError } from './mysql-errors.js'
import { mysqlInbox } from './mysql-inbox.js'
import { NOW_MS, procedureNames } from './mysql-procedures.js'
import {
  affected,
  COLUMNS,
  fingerprintToBytes,
  firstRow,
  idToBytes,
  type Row,
  text,
  toBeginResult,
  toRecord,
} from './mysql-rows.js'
import { assertMysqlIdentifier, DEFAULT_MYSQL_TABLE, mysqlSchema } from './mysql-schema.js'

export interface MysqlStoreOptions {
  /**
   * A mysql2 promise Pool (`mysql2/promise`'s createPool) or Connection that you own and end
   * yourself; or a factory `() => pool`, called on first use, whose client is the store's: ended
   * by `close()`. Its connections must be in autocommit mode (mysql2's default) and not inside a
   * transaction of yours: the store's procedures start and commit their own.
   */
  client: MysqlClient | (() => MysqlClient | Promise<MysqlClient>)
  /** Default `idem_records`; the procedures are named after it. */
  table?: string
  /** Largest result `complete` accepts, in UTF-8 bytes. Default 1 MiB. Mind `max_allowed_packet`. */
  maxResultBytes?: number
}

const OPTIONS = {
  store: 'MysqlStore',
  client: 'a mysql2/promise Pool or Connection, or a factory () => pool',
  accepts: factoryOrClientWith(['query']),
  known: ['client', 'table', 'maxResultBytes'],
}

/** The sweep procedure's limit is an INT. */
const MAX_SWEEP_LIMIT = 2_147_483_647
/**
 * Operations safe to run again after InnoDB rolled them back, as often as said: those on one
 * record, and the batches (each one transaction, so a rollback leaves nothing of them written).
 * A batch holds more locks for longer, so it meets more of the purged-gap deadlocks begin's
 * comment describes under racing claims of deleted ids.
 */
const ROLLED_BACK_ATTEMPTS: Record<string, number> = {
  begin: 3,
  complete: 3,
  release: 3,
  extend: 3,
  delete: 3,
  // A batch contends on many rows at once: under 25 racers on five keys (mysql-racers.test.ts) about
  // half of begin_many_v3's first attempts were deadlock victims, and ten attempts were sometimes
  // not enough; with the growing pause, thirty are.
  beginMany: 30,
  completeMany: 30,
}
/** ER_SP_ALREADY_EXISTS: another ensureSchema() (or an earlier one) created the procedure. */
const PROCEDURE_EXISTS = 1304

/**
 * Records in a MySQL 8 or MariaDB 10.11 table, on a mysql2 promise pool. Every operation is one
 * round trip.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { Idempotency } from 'idem'
 * import { MysqlStore } from 'idem/mysql'
 *
 * const pool = mysql.createPool({ uri: process.env.MYSQL_URL })
 * const store = new MysqlStore({ client: pool }) // yours: end it yourself
 * await store.ensureSchema()
 * const idem = new Idempotency({ store })
 * ```
 */
export class MysqlStore extends BaseStore implements InboxStore {
  #inbox: Inbox | undefined
  readonly table: string
  readonly #client: StoreClient<MysqlClient>
  readonly #sql: ReturnType<typeof statements>

  constructor(options: MysqlStoreOptions) {
    const o = readStoreOptions<MysqlStoreOptions>(options, OPTIONS)
    super('MysqlStore', o.maxResultBytes)
    this.table = assertMysqlIdentifier(o.table ?? DEFAULT_MYSQL_TABLE)
    this.#client = new StoreClient<MysqlClient>(o.client, (error) =>
      storeError(error, 'connect', undefined, this.table),
    )
    this.#sql = statements(this.table)
    // begin_many and complete_many are one transaction each: the calls of a tick share one.
    this.batchPerTick({ begins: true, completes: true })
  }

  /** Claim and completion as statements on a caller's transaction (`idem.transaction`). */
  get inbox(): Inbox {
    this.#inbox ??= mysqlInbox(this.table)
    return this.#inbox
  }

  /** Create the table, its index and its procedures if missing. Safe to run concurrently and repeatedly. */
  async ensureSchema(): Promise<void> {
    if (this.closed) throw this.closedError()
    const client = await this.#resolve()
    for (const statement of mysqlSchema({ table: this.table })) {
      try {
        await client.query({ sql: statement })
      } catch (error) {
        if ((error as { errno?: number }).errno === PROCEDURE_EXISTS) continue
        throw storeError(error, 'ensureSchema', client, this.table)
      }
    }
  }

  protected async doBegin(id: string, fingerprint: string, leaseMs: number, ttlMs: number): Promise<BeginResult> {
    const idBytes = idToBytes(id)
    const fpBytes = fingerprintToBytes(fingerprint)
    const token = randomUUID()
    const sets = await this.#call('begin', this.#sql.begin, [idBytes, fpBytes, token, leaseMs, ttlMs])
    return toBeginResult(firstRow(sets, 0), token)
  }

  protected async doComplete(id: string, token: string, result: string, ttlMs: number): Promise<void> {
    const values = [Buffer.from(result, 'utf8'), ttlMs, idToBytes(id), Buffer.from(token, 'utf8')]
    const header = await this.#query('complete', this.#sql.complete, values)
    if (affected(header) !== 1) throw leaseLost(id, 'complete')
  }

  protected async doRelease(id: string, token: string): Promise<void> {
    const header = await this.#query('release', this.#sql.release, [idToBytes(id), Buffer.from(token, 'utf8')])
    if (affected(header) !== 1) throw leaseLost(id, 'release')
  }

  protected async doExtend(id: string, token: string, leaseMs: number): Promise<number> {
    const sets = await this.#call('extend', this.#sql.extend, [idToBytes(id), Buffer.from(token, 'utf8'), leaseMs])
    const row = firstRow(sets, 0)
    if (Number(row.owned) !== 1) throw leaseLost(id, 'extend')
    return Number(row.lease_until)
  }

  protected async doGet(id: string): Promise<IdempotencyRecord | null> {
    const rows = (await this.#query('get', this.#sql.get, [idToBytes(id)])) as Row[]
    const row = rows[0]
    return row === undefined ? null : toRecord(row)
  }

  protected async doDelete(id: string): Promise<boolean> {
    const sets = await this.#call('delete', this.#sql.delete, [idToBytes(id)])
    return Number(firstRow(sets, 0).deleted) === 1
  }

  protected async doBeginMany(items: readonly BeginItem[], leaseMs: number, ttlMs: number): Promise<BeginResult[]> {
    const tokens = items.map(() => randomUUID())
    const json = JSON.stringify(
      items.map((item, i) => ({
        i: idToBytes(item.id).toString('hex'),
        f: fingerprintToBytes(item.fingerprint).toString('hex'),
        t: tokens[i],
      })),
    )
    const sets = await this.#call('beginMany', this.#sql.beginMany, [json, leaseMs, ttlMs])
    // One result set, a row per item in input order, each naming its position n.
    const rows = sets[0] ?? []
    return tokens.map((token, i) => {
      const row = rows[i]
      if (row === undefined || Number(row.n) !== i + 1) {
        throw new StoreUnavailableError(`MysqlStore: beginMany answered no item ${i + 1}`)
      }
      return toBeginResult(row, token)
    })
  }

  protected async doCompleteMany(items: readonly CompleteItem[], ttlMs: number): Promise<CompleteManyOutcome[]> {
    // An oversize result is not sent: the procedure only checks that the claim is still owned.
    const json = JSON.stringify(
      items.map((item) => ({
        i: idToBytes(item.id).toString('hex'),
        t: Buffer.from(item.token, 'utf8').toString('hex'),
        r: this.tooLarge(item.result) ? undefined : Buffer.from(item.result, 'utf8').toString('hex'),
      })),
    )
    const sets = await this.#call('completeMany', this.#sql.completeMany, [json, ttlMs])
    const letters = text(firstRow(sets, 0).outcomes)
    if (letters.length !== items.length) {
      throw new StoreUnavailableError(`completeMany answered ${letters.length} outcomes for ${items.length} items`)
    }
    return [...letters].map((letter) => (letter === 'c' ? 'completed' : letter === 't' ? 'too_large' : 'lease_lost'))
  }

  protected async doSweep(limit: number): Promise<number> {
    const sets = await this.#call('sweep', this.#sql.sweep, [Math.min(limit, MAX_SWEEP_LIMIT)])
    return Number(firstRow(sets, 0).deleted)
  }

  /** End the client if the store made it (through a factory); one passed in is left alone. */
  protected async doClose(): Promise<void> {
    await this.#client.close(async (client) => {
      const end = (client as Partial<MysqlEndableClient>).end
      if (typeof end === 'function') await end.call(client).catch(() => {})
    })
  }

  protected override describe(): string {
    return `MysqlStore (${this.table})`
  }

  /** The client, creating it through the factory on first use (again after a failed attempt). */
  #resolve(): MysqlClient | Promise<MysqlClient> {
    return this.#client.current ?? this.#client.open()
  }

  /** One statement; returns the rows (SELECT) or the result header (writes). */
  async #query(operation: string, sql: string, values: unknown[]): Promise<unknown> {
    const client = await this.#resolve()
    for (let attempt = 1; ; attempt++) {
      try {
        const [result] = await client.query({ sql, values, rowsAsArray: false, nestTables: false })
        return result
      } catch (error) {
        // InnoDB rolled the transaction back entirely (a deadlock victim, or a snapshot conflict):
        // nothing of the operation was written, so it runs again, after a short random pause that
        // grows with each attempt: racers retrying at once would meet in the same deadlock again
        // (CI saw beginMany lose ten immediate retries in a row under 25 racing connections).
        if (isRolledBack(error) && attempt < (ROLLED_BACK_ATTEMPTS[operation] ?? 0)) {
          await sleep(Math.random() * Math.min(2 ** attempt, 64))
          continue
        }
        throw storeError(error, operation, client, this.table)
      }
    }
  }

  /** One CALL; returns its result sets (each an array of rows), in order. */
  async #call(operation: string, sql: string, values: unknown[]): Promise<Row[][]> {
    const result = await this.#query(operation, sql, values)
    return Array.isArray(result) ? (result.filter(Array.isArray) as Row[][]) : []
  }
}

function statements(table: string) {
  const t = `\`${table}\``
  const p = procedureNames(table)
  // A claim is owned by `token` while the record is in progress, holds that token and is not
  // expired, by the server's clock (NOW_MS is constant within one statement).
  const owned = `id = ? AND token = ? AND state = 'in_progress' AND expires_at > ${NOW_MS}`
  return {
    // CALL begin(id, fingerprint, token, leaseMs, ttlMs): see mysql-procedures.ts.
    begin: `CALL \`${p.begin}\`(?, ?, ?, ?, ?)`,
    beginMany: `CALL \`${p.beginMany}\`(?, ?, ?)`,
    completeMany: `CALL \`${p.completeMany}\`(?, ?)`,
    extend: `CALL \`${p.extend}\`(?, ?, ?)`,
    delete: `CALL \`${p.delete}\`(?)`,
    sweep: `CALL \`${p.sweep}\`(?)`,
    // complete(result, ttlMs, id, token): one conditional UPDATE; only the owner's claim matches.
    // It always changes the row (state becomes completed), so its affected-rows count is 1 for
    // the owner and 0 otherwise, with or without CLIENT_FOUND_ROWS. A completed record no longer
    // matches, so a second complete is refused and the first result is kept.
    complete: `UPDATE ${t} SET state = 'completed', token = NULL, lease_until = NULL, result = ?,
      updated_at = ${NOW_MS}, expires_at = ${NOW_MS} + ? WHERE ${owned}`,
    // release(id, token): one conditional DELETE; zero rows means the token does not own it.
    release: `DELETE FROM ${t} WHERE ${owned}`,
    // get(id): an expired row counts as absent.
    get: `SELECT ${COLUMNS} FROM ${t} WHERE id = ? AND expires_at > ${NOW_MS}`,
  }
}
