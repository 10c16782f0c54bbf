// Version check (optimistic concurrency): an UPDATE that applies only if the row's version is
// still the one the caller read, and bumps it. A stale writer, or a duplicate of a write that
// already went through, gets a conflict with the current version instead of overwriting.

import type { SqlExecutor } from '../sql/core/executor.js'
import { guardedUpdate, guardTarget } from './guarded-update.js'
import type { RowId, SetColumns } from './sql-parts.js'

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

/**
 * Declare a versioned table once; names are checked now, and quoted for the dialect of each
 * executor the updates later run on.
 *
 * @example
 * const accounts = defineVersionCheck({ table: 'accounts' }) // id 'id', version column 'version'
 * const result = await accounts.update(ctx.sql, accountId, readVersion, { set: { balance: 90 } })
 * if (result.outcome === 'conflict') throw new Error(`stale: now at ${result.currentVersion}`)
 */
export function defineVersionCheck(definition: VersionCheckOptions): VersionCheck {
  const target = guardTarget(definition?.table, definition?.id, definition?.column ?? 'version')

  return {
    table: target.table,
    column: target.column,
    async update(sql, id, expected, changes = {}) {
      if (!Number.isSafeInteger(expected) || expected < 0) {
        throw new TypeError(
          `${target.label}: the expected version must be a non-negative integer, got ${String(expected)}`,
        )
      }
      // The version always changes, so a row the UPDATE matched always changes.
      return guardedUpdate<VersionResult>(sql, target, id, {
        assign: (column) => `${column} = ${column} + 1`,
        values: [],
        set: changes.set,
        expected,
        applied: () => ({ outcome: VersionOutcome.UPDATED, version: expected + 1 }),
        missing: () => ({ outcome: VersionOutcome.NOT_FOUND }),
        found(value) {
          // pg returns a bigint column as a string.
          const current = value === null ? Number.NaN : Number(value)
          if (!Number.isSafeInteger(current)) {
            throw new Error(`${target.label}: row ${String(id)} has version ${String(value)}; it must be an integer`)
          }
          return current === expected ? undefined : { outcome: VersionOutcome.CONFLICT, currentVersion: current }
        },
        stuck: `kept returning to version ${expected} while writing it`,
      })
    },
  }
}
