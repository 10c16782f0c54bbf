// Version check (optimistic concurrency): an UPDATE that applies only if the row's version is
// still the one the caller read, and bumps it. A stale writer, or a duplicate of a write that
// already went through, gets a conflict with the current version instead of overwriting.

import { placeholder, type SqlExecutor } from '../sql/executor.js'
import { columnName, quotedNames, tableName } from '../sql/identifiers.js'
import { lockClause, type RowId, rowId, type SetColumns, setClause } from './sql-parts.js'

export interface VersionCheckOptions {
  /** The table, optionally schema-qualified: `'accounts'`, `'bank.accounts'`. Case-sensitive once quoted. */
  table: string
  /** The table's key column (default `'id'`): it must identify one row. */
  id?: string
  /** An integer column, NOT NULL, that every write through this check increments (default `'version'`). */
  column?: string
}

export const VersionOutcome = {
  /** This call wrote the row; `version` is its new version (expected + 1). */
  UPDATED: 'updated',
  /** The row is at `currentVersion`, not the expected one: someone wrote it since it was read. Nothing changed. */
  CONFLICT: 'conflict',
  /** No row has this id. */
  NOT_FOUND: 'not_found',
} as const
export type VersionOutcome = (typeof VersionOutcome)[keyof typeof VersionOutcome]

export type VersionResult =
  | { outcome: 'updated'; version: number }
  | { outcome: 'conflict'; currentVersion: number }
  | { outcome: 'not_found' }

export interface VersionedUpdate {
  /** The columns to write, as `{ column: value }`; each value is sent as a parameter. */
  set?: SetColumns
}

export interface VersionCheck {
  readonly table: string
  readonly column: string
  /**
   * Write row `id` if its version is still `expected`, on `sql`'s connection (inside its
   * transaction, if any): one UPDATE when it applies; a second statement (a locking read) only
   * when it matched nothing, to say why.
   */
  update(sql: SqlExecutor, id: RowId, expected: number, changes?: VersionedUpdate): Promise<VersionResult>
}

// A row only shows `expected` after our UPDATE missed it when it was inserted or rolled back to
// it concurrently; the re-read locks it, so the next UPDATE applies. Bounded all the same.
const MAX_ATTEMPTS = 3

export function defineVersionCheck(definition: VersionCheckOptions): VersionCheck {
  const table = tableName(definition?.table, 'table')
  const idColumn = columnName(definition.id ?? 'id', 'id')
  const column = columnName(definition.column ?? 'version', 'column')
  if (idColumn.toLowerCase() === column.toLowerCase()) throw new TypeError('id and column must be different columns')
  const names = quotedNames({ table, id: idColumn, column })
  const label = `${definition.table}.${column}`

  return {
    table: definition.table,
    column,
    async update(sql, id, expected, changes = {}) {
      if (!Number.isSafeInteger(expected) || expected < 0) {
        throw new TypeError(`${label}: the expected version must be a non-negative integer, got ${String(expected)}`)
      }
      const key = rowId(id)
      const { dialect } = sql
      const n = names(dialect)
      const extra = setClause(dialect, changes.set, 1, [idColumn, column])
      const p = (i: number) => placeholder(dialect, i)
      const next = 1 + extra.values.length
      // The version always changes, so MySQL's affected rows mean the same whether the connection
      // counts matched rows (mysql2's default) or changed ones. Of two racers with the same
      // expected version, the second waits on the first's row lock, then matches nothing.
      const update =
        `UPDATE ${n.table} SET ${n.column} = ${n.column} + 1${extra.text} ` +
        `WHERE ${n.id} = ${p(next)} AND ${n.column} = ${p(next + 1)}`
      const params = [...extra.values, key, expected]
      // Locking, so that InnoDB's REPEATABLE READ shows the committed version, not a snapshot.
      const reread = `SELECT ${n.column} AS idem_version FROM ${n.table} WHERE ${n.id} = ${p(1)}${lockClause(dialect)}`

      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const { affectedRows } = await sql.execute(update, params)
        if (affectedRows === 1) return { outcome: VersionOutcome.UPDATED, version: expected + 1 }
        if (affectedRows > 1) {
          throw new Error(
            `${label}: ${affectedRows} rows have ${idColumn} = ${String(key)}; the id must identify one row`,
          )
        }
        const { rows } = await sql.execute(reread, [key])
        const row = rows[0]
        if (row === undefined) return { outcome: VersionOutcome.NOT_FOUND }
        // pg returns a bigint column as a string.
        const current = row.idem_version === null ? Number.NaN : Number(row.idem_version)
        if (!Number.isSafeInteger(current)) {
          throw new Error(`${label}: row ${String(key)} has version ${String(row.idem_version)}; it must be an integer`)
        }
        if (current !== expected) return { outcome: VersionOutcome.CONFLICT, currentVersion: current }
      }
      throw new Error(`${label}: row ${String(key)} kept returning to version ${expected} while writing it`)
    },
  }
}
