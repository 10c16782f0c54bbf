// Small SQL helpers shared by the guard tests: portable statements over a rig, and an executor
// that records what a guard sends without a database.

import { placeholder, type SqlDialect, type SqlExecutor, type SqlResult } from '../../../src/sql/core/executor.js'
import { quote } from '../../../src/sql/core/identifiers.js'
import { barrier, type GuardRig } from './guard-rigs.test-helper.js'

/** `text` with `?` placeholders and `{t}` for the rig's quoted table `base`, run outside any transaction. */
export async function run(rig: GuardRig, base: string, text: string, params: unknown[] = []): Promise<SqlResult> {
  return rig.sql.execute(portable(rig.dialect, text.replaceAll('{t}', quotedTable(rig, base))), params)
}

export function quotedTable(rig: GuardRig, base: string): string {
  return quote(rig.dialect, rig.table(base).split('.'))
}

/** `?` placeholders rewritten to the dialect's own. */
export function portable(dialect: SqlDialect, text: string): string {
  let n = 0
  return text.replace(/\?/g, () => placeholder(dialect, ++n))
}

export interface RecordingExecutor extends SqlExecutor {
  readonly calls: { sql: string; params: readonly unknown[] }[]
}

/** An executor that answers every statement with `result` and records it. */
export function recordingExecutor(
  dialect: SqlDialect,
  result: SqlResult = { rows: [], affectedRows: 1 },
): RecordingExecutor {
  const calls: { sql: string; params: readonly unknown[] }[] = []
  return {
    dialect,
    calls,
    async execute(sql, params) {
      calls.push({ sql, params })
      return result
    },
  }
}

/** `sql` with a count of the statements run through it. */
export function counting(sql: SqlExecutor): SqlExecutor & { statements: number } {
  const counted = {
    dialect: sql.dialect,
    statements: 0,
    execute(text: string, params: readonly unknown[]) {
      counted.statements++
      return sql.execute(text, params)
    },
  }
  return counted
}

/**
 * `count` transactions that all write row `id` of `base` at once. Where the database runs them in
 * parallel, each first reads the row's `column` (so REPEATABLE READ fixes its snapshot there) and
 * none writes before all of them hold an open transaction.
 */
export async function raceOnRow<R>(
  rig: GuardRig,
  base: string,
  column: string,
  id: string,
  count: number,
  write: (sql: SqlExecutor, racer: number) => Promise<R>,
): Promise<R[]> {
  const arrive = barrier(count)
  const read = portable(rig.dialect, `SELECT ${column} FROM ${quotedTable(rig, base)} WHERE id = ?`)
  return Promise.all(
    Array.from({ length: count }, (_, racer) =>
      rig.db.transaction(async (_tx, sql): Promise<R> => {
        if (rig.parallel) {
          await sql.execute(read, [id])
          await arrive()
        }
        return write(sql, racer)
      }),
    ),
  )
}
