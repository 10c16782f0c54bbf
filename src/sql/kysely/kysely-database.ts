// fromKysely: transaction mode on a Kysely instance (Idem opens each transaction) or on a Kysely
// Transaction the caller is in (Idem joins it under a savepoint). Idem's statements run as raw
// compiled queries on the same connection, without the instance's plugins.

import { CompiledQuery, type Kysely, type Transaction } from 'kysely'
import type { SqlDatabase, SqlDialect, SqlExecutor } from '../core/executor.js'
import { inSavepoint } from '../core/savepoint.js'

const DIALECTS: readonly SqlDialect[] = ['postgres', 'mysql', 'sqlite']

export function kyselyExecutor<DB>(db: Kysely<DB>, dialect: SqlDialect): SqlExecutor {
  // Plugins rewrite results (CamelCasePlugin renames columns): Idem reads its rows as the database
  // returns them. withoutPlugins() keeps the same connection, transaction included.
  const plain = db.withoutPlugins()
  return {
    dialect,
    async execute(sql, params) {
      const result = await plain.executeQuery(CompiledQuery.raw(sql, [...params]))
      const rows = result.rows as Record<string, unknown>[]
      // Kysely reports numAffectedRows for writes (INSERT/UPDATE/DELETE, with or without RETURNING).
      const affected = result.numAffectedRows
      return { rows, affectedRows: affected === undefined ? rows.length : Number(affected) }
    },
  }
}

/**
 * A `Kysely` instance: each `idem.transaction` runs in `db.transaction().execute(…)` and your
 * function gets that `Transaction`. A `Transaction` (from `transaction().execute` or
 * `startTransaction()`) is taken as one you opened: Idem works under a savepoint in it and never
 * commits. `dialect` is read from the SQL the instance compiles; pass it for a dialect Idem
 * cannot recognise.
 *
 * @example
 * ```ts
 * import { fromKysely } from 'idem/kysely'
 *
 * await idem.transaction(fromKysely(kysely), { key, payload }, async (trx) => {
 *   await trx.updateTable('accounts').set({ balance: 0 }).where('id', '=', 'acc-1').execute()
 * })
 * ```
 */
export function fromKysely<DB>(db: Kysely<DB>, dialect?: SqlDialect): SqlDatabase<Transaction<DB>> {
  if (db === null || typeof db !== 'object' || typeof (db as { executeQuery?: unknown }).executeQuery !== 'function') {
    throw new TypeError('fromKysely needs a Kysely instance or a Kysely Transaction')
  }
  const resolved = dialect === undefined ? detectDialect(db) : checkDialect(dialect)
  if (db.isTransaction) {
    const trx = db as Transaction<DB>
    const sql = kyselyExecutor(trx, resolved)
    return {
      dialect: resolved,
      transaction: (fn) => inSavepoint(sql, () => fn(trx, sql), 'fromKysely'),
    }
  }
  return {
    dialect: resolved,
    transaction: (fn) => db.transaction().execute((trx) => fn(trx, kyselyExecutor(trx, resolved))),
  }
}

function checkDialect(dialect: SqlDialect): SqlDialect {
  if (!DIALECTS.includes(dialect)) {
    throw new TypeError(`fromKysely: dialect must be 'postgres', 'mysql' or 'sqlite', got ${JSON.stringify(dialect)}`)
  }
  return dialect
}

/**
 * The dialect, from how the instance's query compiler writes a parameter and an identifier: public
 * API, and right for third-party dialects built on Kysely's compilers. Plugins are left out, as
 * one may rewrite names (a schema prefix).
 */
function detectDialect<DB>(db: Kysely<DB>): SqlDialect {
  // biome-ignore lint/suspicious/noExplicitAny: a probe query on a table the DB type does not name
  const probe = (db as Kysely<any>)
    .withoutPlugins()
    .selectFrom('idem_probe')
    .select('c')
    .where('c', '=', 0)
    .compile().sql
  if (probe === 'select "c" from "idem_probe" where "c" = $1') return 'postgres'
  if (probe === 'select `c` from `idem_probe` where `c` = ?') return 'mysql'
  if (probe === 'select "c" from "idem_probe" where "c" = ?') return 'sqlite'
  throw new TypeError(
    `fromKysely cannot tell this instance's dialect (it compiles ${JSON.stringify(probe)}): ` +
      "pass it as the second argument, fromKysely(db, 'postgres' | 'mysql' | 'sqlite')",
  )
}
