// What both guards are made of: a row's table, key and guarded column, checked once; one
// conditional UPDATE that applies only while the column holds the expected value; and, when it
// matches nothing, a locking re-read of that column to say why.

import { placeholder, type SqlDialect, type SqlExecutor } from '../sql/core/executor.js'
import { columnName, quotedNames, tableName } from '../sql/core/identifiers.js'
import { lockClause, type RowId, rowId, type SetColumns, setClause } from './sql-parts.js'

/** The row a guard acts on: names checked at definition, quoted for each dialect on use. */
export interface GuardTarget {
  /** The table as the caller wrote it (`'shop.orders'`). */
  readonly table: string
  readonly idColumn: string
  readonly column: string
  /** `table.column`, to start error messages with. */
  readonly label: string
  names(dialect: SqlDialect): { table: string; id: string; column: string }
}

/** Check a guard's names (a TypeError naming the option otherwise). */
export function guardTarget(table: string, id: string | undefined, column: string | undefined): GuardTarget {
  const parts = tableName(table, 'table')
  const idColumn = columnName(id ?? 'id', 'id')
  const checked = columnName(column, 'column')
  if (idColumn.toLowerCase() === checked.toLowerCase()) throw new TypeError('id and column must be different columns')
  return {
    table,
    idColumn,
    column: checked,
    label: `${table}.${checked}`,
    names: quotedNames({ table: parts, id: idColumn, column: checked }),
  }
}

export interface GuardedUpdate<R> {
  /** The guard's own assignment to the column, e.g. `"status" = $1`; its values come first. */
  assign(column: string, p: (i: number) => string): string
  values: readonly unknown[]
  /** The caller's extra columns, set in the same UPDATE. */
  set: SetColumns | undefined
  /** What the column must hold for the UPDATE to apply. */
  expected: unknown
  /** This call's UPDATE changed the row. */
  applied(): R
  /** No row has the key. */
  missing(): R
  /** The row holds `value`: the outcome it means, or undefined when it is `expected` again (try once more). */
  found(value: unknown): R | undefined
  /** Why the row could not be settled after every attempt. */
  stuck: string
}

// A row only holds `expected` after the UPDATE missed it when it was inserted, or moved back,
// concurrently; the re-read locks it, so the next UPDATE applies. Bounded all the same.
const MAX_ATTEMPTS = 3

/**
 * Run `update` on row `id` on `sql`'s connection (inside its transaction, if any): one statement
 * when it applies, a locking read only when it matched nothing.
 */
export async function guardedUpdate<R>(
  sql: SqlExecutor,
  target: GuardTarget,
  id: RowId,
  update: GuardedUpdate<R>,
): Promise<R> {
  const key = rowId(id)
  const { dialect } = sql
  const n = target.names(dialect)
  const p = (i: number) => placeholder(dialect, i)
  const first = update.values.length + 1
  const extra = setClause(dialect, update.set, first, [target.idColumn, target.column])
  const next = first + extra.values.length
  // Matches only a row still at `expected`: of two racers, the second waits on the first's row
  // lock and then matches nothing (under READ COMMITTED PostgreSQL re-checks the WHERE on the
  // committed row; an InnoDB UPDATE reads the latest committed row), so exactly one applies.
  const text =
    `UPDATE ${n.table} SET ${update.assign(n.column, p)}${extra.text} ` +
    `WHERE ${n.id} = ${p(next)} AND ${n.column} = ${p(next + 1)}`
  const params = [...update.values, ...extra.values, key, update.expected]
  // A locking read: under InnoDB's REPEATABLE READ a plain SELECT would show the transaction's
  // snapshot, not the committed state the UPDATE just saw.
  const reread = `SELECT ${n.column} AS idem_value FROM ${n.table} WHERE ${n.id} = ${p(1)}${lockClause(dialect)}`

  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    // Each guard's UPDATE always changes the column it matched, so MySQL's affected rows are the
    // same whether the connection counts matched rows (mysql2's default) or changed ones.
    const { affectedRows } = await sql.execute(text, params)
    if (affectedRows === 1) return update.applied()
    if (affectedRows > 1) {
      throw new Error(
        `${target.label}: ${affectedRows} rows have ${target.idColumn} = ${String(key)}; the id must identify one row`,
      )
    }
    const row = (await sql.execute(reread, [key])).rows[0]
    if (row === undefined) return update.missing()
    const outcome = update.found(row.idem_value)
    if (outcome !== undefined) return outcome
  }
  throw new Error(`${target.label}: row ${String(key)} ${update.stuck}`)
}
