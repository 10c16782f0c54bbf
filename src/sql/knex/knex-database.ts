// fromKnex: transaction mode on a Knex instance (Idem opens each transaction) or on a Knex trx the
// caller is in (Idem joins it under a savepoint). Idem's statements run as knex.raw on the trx.

import type { Knex } from 'knex'
import type { PgQueryResult } from '../../drivers/pg.js'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../core/executor.js'
import { splitNumbered } from '../core/placeholders.js'
import { inSavepoint } from '../core/savepoint.js'
import { mysql2Executor } from '../mysql2/mysql2-database.js'
import { pgExecutor } from '../pg/pg-database.js'

/** Knex's driver names (the client's `driverName`, whatever `client` was configured as). */
const DRIVERS: Record<string, SqlDialect> = {
  pg: 'postgres',
  mysql: 'mysql',
  mysql2: 'mysql',
  'better-sqlite3': 'sqlite',
}

export function knexExecutor(trx: Knex, dialect: SqlDialect): SqlExecutor {
  const raw = rawOf(trx)
  switch (dialect) {
    case 'postgres':
      // Knex's pg client answers a raw query with pg's own result.
      return pgExecutor({ query: (sql, params = []) => raw<PgQueryResult>(...toKnexPostgres(sql, params)) })
    case 'mysql':
      // mysql and mysql2 both answer [rows or result header, fields], as mysql2/promise does.
      return mysql2Executor({ query: (sql, params = []) => raw<[unknown, unknown]>(sql, params) })
    case 'sqlite':
      return {
        dialect,
        async execute(sql, params) {
          // better-sqlite3 through Knex: rows for a statement that returns data, else its RunResult.
          const result = await raw<Record<string, unknown>[] | { changes: number }>(sql, [...params])
          if (Array.isArray(result)) return { rows: result, affectedRows: result.length }
          return { rows: [], affectedRows: Number(result.changes) }
        },
      }
  }
}

/**
 * A Knex instance: each `idem.transaction` runs in `knex.transaction(…)` and your function gets
 * that trx. A trx is taken as a transaction you opened: Idem works under a savepoint in it and
 * never commits. PostgreSQL (pg), MySQL / MariaDB (mysql2, mysql) and SQLite (better-sqlite3).
 *
 * @example
 * ```ts
 * import { fromKnex } from 'idem/knex'
 *
 * await idem.transaction(fromKnex(knex), { key, payload }, async (trx) => {
 *   await trx('accounts').where({ id: 'acc-1' }).update({ balance: 0 })
 * })
 * ```
 */
export function fromKnex(knexOrTrx: Knex): SqlDatabase<Knex.Transaction> {
  const candidate = knexOrTrx as unknown as { raw?: unknown; client?: unknown }
  if (typeof knexOrTrx !== 'function' || typeof candidate.raw !== 'function' || candidate.client == null) {
    throw new TypeError('fromKnex needs a Knex instance or a Knex transaction (trx)')
  }
  const dialect = dialectOf(knexOrTrx)
  if (knexOrTrx.isTransaction === true) {
    const trx = knexOrTrx as Knex.Transaction
    const sql = knexExecutor(trx, dialect)
    return { dialect, transaction: (fn) => inSavepoint(sql, () => fn(trx, sql), 'fromKnex') }
  }
  return {
    dialect,
    async transaction(fn) {
      // Knex takes a function that throws `undefined` for an explicit rollback and resolves the
      // transaction: remember what the function threw and hand it back unchanged, as the other
      // adapters do.
      let thrown: { error: unknown } | undefined
      let result: Awaited<ReturnType<typeof fn>> | undefined
      try {
        result = await knexOrTrx.transaction(async (trx) => {
          try {
            return await fn(trx, knexExecutor(trx, dialect))
          } catch (error) {
            thrown = { error }
            throw error
          }
        })
      } catch (error) {
        if (thrown === undefined) throw error
      }
      if (thrown !== undefined) throw thrown.error
      return result as Awaited<ReturnType<typeof fn>>
    },
  }
}

function dialectOf(knex: Knex): SqlDialect {
  const client = knex.client as Partial<Knex.Client>
  const driver = String(client.driverName)
  const dialect = DRIVERS[driver]
  if (dialect !== undefined) return dialect
  if (driver === 'sqlite3') {
    // Verified in Knex 3: its sqlite3 client runs a raw statement with all(), whose answer says
    // nothing of the rows an INSERT or UPDATE changed, and Idem's claim depends on that count.
    throw new TypeError("fromKnex: Knex's sqlite3 client does not report changed rows; use client 'better-sqlite3'")
  }
  throw new TypeError(
    `fromKnex supports Knex's pg, mysql, mysql2 and better-sqlite3 clients, not ${JSON.stringify(driver)}`,
  )
}

type Raw = <R>(sql: string, bindings: unknown[]) => Promise<R>

/**
 * knex.raw on the trx's connection. A `postProcessResponse` hook (a camelCase mapper) would rewrite
 * Idem's rows; Idem reads them as the driver returns them, through a view of the trx's client
 * whose config leaves the hook out (same connection, same events).
 */
function rawOf(trx: Knex): Raw {
  const client = trx.client as Knex.Client
  if (typeof client.config?.postProcessResponse !== 'function') {
    return <R>(sql: string, bindings: unknown[]) => trx.raw(sql, bindings as Knex.RawBinding[]) as unknown as Promise<R>
  }
  const plain = Object.create(client, {
    config: { value: { ...client.config, postProcessResponse: undefined } },
  }) as Knex.Client
  return <R>(sql: string, bindings: unknown[]) => plain.raw(sql, bindings) as Promise<R>
}

/**
 * Knex takes `?` placeholders and numbers them `$1 … $n` itself for pg, so Idem's `$n` become `?`
 * (values repeated and reordered to match), and the statement's own `?` (a jsonb operator) are
 * escaped as `\?`, which Knex sends as a plain `?`.
 */
export function toKnexPostgres(sql: string, params: readonly unknown[]): [string, unknown[]] {
  if (sql.includes('\\?')) {
    // Knex drops a backslash before a `?` whatever it escapes: the statement would change.
    throw new TypeError(`fromKnex cannot send a backslash followed by "?" on PostgreSQL: ${sql}`)
  }
  const { text, order } = splitNumbered(sql, params.length)
  let out = escapeQuestionMarks(text[0] ?? '')
  for (let i = 0; i < order.length; i++) {
    // "\??" or "??" would read as one token to Knex (an identifier binding): keep them apart.
    out += out.endsWith('?') ? ' ?' : '?'
    out += escapeQuestionMarks(text[i + 1] ?? '')
  }
  return [out, order.map((index) => params[index])]
}

function escapeQuestionMarks(text: string): string {
  return text.replaceAll('?', '\\?')
}
