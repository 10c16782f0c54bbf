// The SQL pieces both guards build on: identifiers checked once and quoted per dialect, and the
// caller's extra SET columns turned into placeholders. Names go into the text; values never do.

import { placeholder, type SqlDialect } from '../sql/executor.js'

// A plain identifier, up to PostgreSQL's 63-byte limit (a longer one it would truncate silently).
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** A row's key value, sent as a parameter. */
export type RowId = string | number | bigint

/** Extra columns a guard's UPDATE sets, as `{ column: value }`; each value is sent as a parameter. */
export type SetColumns = Readonly<Record<string, unknown>>

/** `name` checked as a column name; throws a TypeError naming `what` otherwise. */
export function columnName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new TypeError(`${what} must be a column name (letters, digits, underscore), got ${JSON.stringify(name)}`)
  }
  return name
}

/** `name` checked as a table name, optionally qualified by its schema (`shop.orders`). */
export function tableName(name: unknown, what: string): string[] {
  const parts = typeof name === 'string' ? name.split('.') : []
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new TypeError(
      `${what} must be a table name, optionally schema-qualified (letters, digits, underscore), got ${JSON.stringify(name)}`,
    )
  }
  return parts
}

/** A checked identifier (or its dotted parts) quoted for `dialect`. */
export function quote(dialect: SqlDialect, parts: string | readonly string[]): string {
  const q = dialect === 'mysql' ? '`' : '"'
  return (typeof parts === 'string' ? [parts] : parts).map((part) => `${q}${part}${q}`).join('.')
}

/** The quoted names of a guard's table and columns, computed once per dialect. */
export function quotedNames<N extends Record<string, string | readonly string[]>>(
  names: N,
): (dialect: SqlDialect) => { [K in keyof N]: string } {
  const cache = new Map<SqlDialect, { [K in keyof N]: string }>()
  return (dialect) => {
    let quoted = cache.get(dialect)
    if (quoted === undefined) {
      quoted = Object.fromEntries(Object.entries(names).map(([k, v]) => [k, quote(dialect, v)])) as {
        [K in keyof N]: string
      }
      cache.set(dialect, quoted)
    }
    return quoted
  }
}

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
