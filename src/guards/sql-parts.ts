// The SQL pieces both guards build on: identifiers checked once and quoted per dialect, and the
// caller's extra SET columns turned into placeholders. Names go into the text; values never do.

import { placeholder, type SqlDialect } from '../sql/core/executor.js'
import { columnName, quote } from '../sql/core/identifiers.js'

/** A row's key value, sent as a parameter. */
export type RowId = string | number | bigint

/** Extra columns a guard's UPDATE sets, as `{ column: value }`; each value is sent as a parameter. */
export type SetColumns = Readonly<Record<string, unknown>>

/**
 * `"col" = $n, …` for the caller's extra columns, numbering placeholders from `first`, with their
 * values in the same order. A column the guard itself sets or matches on is refused: setting it
 * by hand would defeat the guard.
 */
export function setClause(
  dialect: SqlDialect,
  set: SetColumns | undefined,
  first: number,
  reserved: readonly string[],
): { text: string; values: unknown[] } {
  if (set === undefined) return { text: '', values: [] }
  if (set === null || typeof set !== 'object' || Array.isArray(set)) {
    throw new TypeError('set must be an object of { column: value }')
  }
  let text = ''
  const values: unknown[] = []
  for (const [column, value] of Object.entries(set)) {
    columnName(column, 'A set column')
    if (reserved.some((name) => name.toLowerCase() === column.toLowerCase()))
      throw new TypeError(`set cannot change "${column}": the guard itself manages it`)
    if (value === undefined) throw new TypeError(`set.${column} is undefined; pass null to store NULL`)
    text += `, ${quote(dialect, column)} = ${placeholder(dialect, first + values.length)}`
    values.push(value)
  }
  return { text, values }
}

/** The row lock clause for the re-read after an UPDATE that matched nothing (see its callers). */
export function lockClause(dialect: SqlDialect): string {
  return dialect === 'sqlite' ? '' : ' FOR UPDATE'
}

/** `id` checked as a key value the drivers can all send. */
export function rowId(id: unknown): RowId {
  if (typeof id === 'string' || typeof id === 'bigint' || (typeof id === 'number' && Number.isFinite(id))) return id
  throw new TypeError(`A row id must be a string, a finite number or a bigint, got ${typeof id}`)
}
