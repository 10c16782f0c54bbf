// SQL identifiers (table and column names) checked once and quoted per dialect. Names go into
// the text of a statement; values never do.

import type { SqlDialect } from './executor.js'

// A plain identifier, up to PostgreSQL's 63-byte limit (a longer one it would truncate silently).
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

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
