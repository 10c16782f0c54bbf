// PostgresStore's claim and completion on the caller's transaction. The begin function needs no
// change: it is a plpgsql function (no COMMIT of its own), and under READ COMMITTED each of its
// statements sees what committed before it, so a racer's claim is waited for, then read.
//
// When Idem opened the transaction on a pool (TransactionEdges with `multi`), BEGIN goes in the
// claim's round trip and COMMIT in the completion's: one simple-protocol text each, the values
// inlined as literals (that protocol takes no parameters). A value that cannot be inlined exactly
// (a large result, a string holding U+0000) takes the parameter path, one round trip more.
//
// On that path a key with no record can be settled in its claim (`settledResult`, the settle
// function): inserted as completed with the result of a function that returns nothing, so that
// such a function's transaction ends with a bare COMMIT instead of an UPDATE of the record and
// COMMIT (no second row version of the record, no new index entries for it); a value replaces
// the result (resettle, leaving expires_at alone). PostgreSQL has no dirty reads: no other
// session sees the row before COMMIT, and a rollback removes it. Only a key that has no record is
// settled; any other goes through begin.

import type { SqlResult, TransactionEdges } from '../../sql/core/executor.js'
import type { Inbox } from '../../sql/core/inbox.js'
import type { PostgresNames } from './postgres-names.js'
import type { FunctionPresence } from './postgres-presence.js'
import { type BeginRow, toBeginResult } from './postgres-rows.js'
import { NOT_OWNED, type PostgresStatements } from './postgres-sql.js'

export function postgresInbox(names: PostgresNames, statements: PostgresStatements, presence: FunctionPresence): Inbox {
  // Asked outside the transaction, before it begins (edges.raw sends no BEGIN).
  const canSettle = (edges: TransactionEdges) =>
    presence.check(async (text) => (await edges.raw.execute(text, [])).rows)
  return {
    dialect: 'postgres',
    table: names.qualifiedTable,
    settles: true,
    async claim(sql, id, fingerprint, token, leaseMs, ttlMs, edges, settledResult) {
      const params = [id, fingerprint, token, leaseMs, ttlMs]
      const settling =
        edges?.pending && settledResult !== undefined && (await canSettle(edges))
          ? inline(statements.settle, [...params, Buffer.from(settledResult, 'utf8')], edges)
          : undefined
      const fused = settling ?? (edges?.pending ? inline(statements.begin, params, edges) : undefined)
      if (fused !== undefined && edges !== undefined) {
        const answer = await lastOf(edges, `BEGIN; ${fused}`)
        edges.begun()
        const row = answer.rows[0] as unknown as BeginRow | { outcome: 'settled'; lease_until: string }
        if (row?.outcome === 'settled') {
          return {
            outcome: 'acquired',
            token,
            attempt: 1,
            recovered: false,
            leaseUntil: Number(row.lease_until),
            settled: true,
          }
        }
        return toBeginResult(row as BeginRow)
      }
      const { rows } = await sql.execute(statements.begin, params)
      return toBeginResult(rows[0] as unknown as BeginRow)
    },
    async complete(sql, id, token, result, ttlMs, edges, settled) {
      const bytes = Buffer.from(result, 'utf8')
      const [orFail, params] = settled
        ? [statements.resettle, [id, bytes]]
        : [statements.completeOrFail, [id, token, bytes, ttlMs]]
      const fused = edges !== undefined && !edges.pending ? inline(orFail, params, edges) : undefined
      if (fused !== undefined && edges !== undefined) {
        // The statement fails when the claim is not ours, so that COMMIT never runs then.
        if (!(await unlessNotOwned(() => lastOf(edges, `${fused}; COMMIT`)))) return false
        edges.committed()
        return true
      }
      if (settled) return unlessNotOwned(() => sql.execute(orFail, params))
      const done = await sql.execute(statements.complete, params)
      return done.affectedRows === 1
    },
  }
}

/** `statement` with `$n` replaced by the literals of `params`, or undefined if one cannot be inlined. */
function inline(statement: string, params: readonly unknown[], edges: TransactionEdges): string | undefined {
  if (edges.multi === undefined || edges.literal === undefined) return undefined
  const literals: string[] = []
  for (const value of params) {
    const literal = edges.literal(value)
    if (literal === undefined) return undefined
    literals.push(literal)
  }
  return statement.replace(/\$(\d+)/g, (_, n: string) => literals[Number(n) - 1] as string)
}

/**
 * Run `text` and return its last statement's result (a driver that answers a text of several
 * statements with only the last one's result is read the same way).
 */
async function lastOf(edges: TransactionEdges, text: string): Promise<SqlResult> {
  const results = await (edges.multi as (text: string) => Promise<SqlResult[]>)(text)
  const last = results[results.length - 1]
  if (last === undefined) throw new Error('PostgresStore inbox: the statements returned no result')
  return last
}

/** True when `run` went through, false when it failed because the claim was not ours (NOT_OWNED). */
async function unlessNotOwned(run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run()
    return true
  } catch (error) {
    if (isNotOwned(error)) return false
    throw error
  }
}

function isNotOwned(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null
  return e?.code === '22P02' && typeof e.message === 'string' && e.message.includes(NOT_OWNED)
}
