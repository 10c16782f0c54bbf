// State-machine guard: a status transition as one conditional UPDATE, whose zero affected rows
// say the transition already happened (a duplicate), is not allowed from where the row is, or
// has no row to act on. The business-level idempotency technique for status flows.

import { ErrorCode, IdempotencyError } from '../errors.js'
import type { SqlExecutor } from '../sql/core/executor.js'
import { guardedUpdate, guardTarget } from './guarded-update.js'
import type { RowId, SetColumns } from './sql-parts.js'

/** The allowed transitions: each state maps to the states it may move to. */
export type Transitions = Readonly<Record<string, readonly string[]>>

export interface StateMachineOptions<T extends Transitions> {
  /** The table, optionally schema-qualified: `'orders'`, `'shop.orders'`. Case-sensitive once quoted. */
  table: string
  /** The table's key column (default `'id'`): it must identify one row. */
  id?: string
  /** The status column the transitions apply to. */
  column: string
  transitions: T
}

export const TransitionOutcome = {
  /** This call moved the row from `from` to `to`. */
  APPLIED: 'applied',
  /** The row was already in `to`: a duplicate (or someone else made the same move). Nothing changed. */
  ALREADY_APPLIED: 'already_applied',
  /** The row is in another state (`current`), from which the move is not this one. Nothing changed. */
  NOT_ALLOWED: 'not_allowed',
  /** No row has this id. */
  NOT_FOUND: 'not_found',
} as const
export type TransitionOutcome = (typeof TransitionOutcome)[keyof typeof TransitionOutcome]

export type TransitionResult =
  | { outcome: 'applied' }
  | { outcome: 'already_applied' }
  | { outcome: 'not_allowed'; current: string | null }
  | { outcome: 'not_found' }

export interface TransitionOptions {
  /** Other columns to write in the same UPDATE, only when the transition applies (`{ paid_at: now }`). */
  set?: SetColumns
}

export interface StateMachine<T extends Transitions> {
  readonly table: string
  readonly column: string
  readonly transitions: T
  /** True when `from → to` is declared. */
  can(from: string, to: string): boolean
  /**
   * Move row `id` from `from` to `to` on `sql`'s connection (inside its transaction, if any): one
   * UPDATE when it applies; a second statement (a locking read) only when it matched nothing, to
   * say why. A move that is not declared throws a TypeError before any statement runs.
   */
  transition<F extends keyof T & string>(
    sql: SqlExecutor,
    id: RowId,
    from: F,
    to: T[F][number],
    options?: TransitionOptions,
  ): Promise<TransitionResult>
  /**
   * As `transition`, but `not_allowed` and `not_found` throw a StateTransitionError: for flows where
   * they mean a bug or a message that can never apply, so that the surrounding transaction rolls
   * back (and, under `idem.transaction` with `isFinal`, the failure is stored and replayed).
   */
  transitionOrThrow<F extends keyof T & string>(
    sql: SqlExecutor,
    id: RowId,
    from: F,
    to: T[F][number],
    options?: TransitionOptions,
  ): Promise<{ outcome: 'applied' } | { outcome: 'already_applied' }>
}

/**
 * A transition that found its row elsewhere (`not_allowed`, with `current`) or found no row.
 * An `IdempotencyError` with code `STATE_TRANSITION_REJECTED`.
 *
 * @example
 * try {
 *   await orders.transitionOrThrow(ctx.sql, orderId, 'pending', 'paid')
 * } catch (error) {
 *   if (error instanceof StateTransitionError && error.outcome === 'not_found') return 'unknown order'
 *   throw error
 * }
 */
export class StateTransitionError extends IdempotencyError {
  readonly outcome: 'not_allowed' | 'not_found'
  /** The row's state when the transition was refused (`not_allowed` only). */
  readonly current: string | null | undefined

  constructor(
    readonly table: string,
    readonly id: RowId,
    readonly from: string,
    readonly to: string,
    result: { outcome: 'not_allowed'; current: string | null } | { outcome: 'not_found' },
  ) {
    super(
      ErrorCode.STATE_TRANSITION_REJECTED,
      result.outcome === 'not_found'
        ? `${table} ${String(id)} does not exist (transition ${from} → ${to})`
        : `${table} ${String(id)} is ${result.current}, so ${from} → ${to} does not apply`,
    )
    this.name = 'StateTransitionError'
    this.outcome = result.outcome
    this.current = result.outcome === 'not_allowed' ? result.current : undefined
  }
}

/**
 * Declare the transitions of `table.column` once; names are checked now, and quoted for the
 * dialect of each executor the transitions later run on.
 *
 * @example
 * const orders = defineStateMachine({
 *   table: 'orders',
 *   column: 'status',
 *   transitions: { pending: ['paid', 'cancelled'], paid: ['shipped'] },
 * })
 * // inside idem.transaction(db, { key }, async (tx, ctx) => …)
 * const { outcome } = await orders.transition(ctx.sql, orderId, 'pending', 'paid', { set: { paid_at: now } })
 */
export function defineStateMachine<const T extends Transitions>(definition: StateMachineOptions<T>): StateMachine<T> {
  const target = guardTarget(definition?.table, definition?.id, definition?.column)
  const transitions = checkTransitions(definition.transitions)
  const can = (from: string, to: string) => Object.hasOwn(transitions, from) && transitions[from]?.includes(to) === true

  async function transition(
    sql: SqlExecutor,
    id: RowId,
    from: string,
    to: string,
    options: TransitionOptions = {},
  ): Promise<TransitionResult> {
    if (!can(from, to)) {
      const next = Object.hasOwn(transitions, from) ? transitions[from]?.join(', ') : undefined
      throw new TypeError(
        `${target.label}: ${JSON.stringify(from)} → ${JSON.stringify(to)} is not a declared transition` +
          (next === undefined ? ` (${JSON.stringify(from)} has none)` : ` (${from} may go to: ${next})`),
      )
    }
    // `from` differs from `to`, so a row the UPDATE matched always changes.
    return guardedUpdate<TransitionResult>(sql, target, id, {
      assign: (column, p) => `${column} = ${p(1)}`,
      values: [to],
      set: options.set,
      expected: from,
      applied: () => ({ outcome: TransitionOutcome.APPLIED }),
      missing: () => ({ outcome: TransitionOutcome.NOT_FOUND }),
      found(value) {
        const current = value === null || value === undefined ? null : String(value)
        if (current === to) return { outcome: TransitionOutcome.ALREADY_APPLIED }
        if (current !== from) return { outcome: TransitionOutcome.NOT_ALLOWED, current }
        return undefined
      },
      stuck: `kept returning to ${from} while moving it to ${to}`,
    })
  }

  return {
    table: target.table,
    column: target.column,
    transitions,
    can,
    transition,
    async transitionOrThrow(sql, id, from, to, options) {
      const result = await transition(sql, id, from, to, options)
      if (result.outcome === 'applied' || result.outcome === 'already_applied') return result
      throw new StateTransitionError(target.table, id, from, to, result)
    },
  }
}

function checkTransitions<T extends Transitions>(transitions: T): T {
  if (transitions === null || typeof transitions !== 'object' || Array.isArray(transitions)) {
    throw new TypeError('transitions must be an object: { state: [states it may move to] }')
  }
  const entries = Object.entries(transitions)
  if (entries.length === 0) throw new TypeError('transitions must declare at least one transition')
  for (const [from, targets] of entries) {
    if (from === '') throw new TypeError('A state must be a non-empty string')
    if (!Array.isArray(targets)) throw new TypeError(`transitions.${from} must be an array of states`)
    for (const to of targets) {
      if (typeof to !== 'string' || to === '') throw new TypeError(`transitions.${from} must hold non-empty strings`)
      // A guard tells a duplicate by finding the row already in `to`; with `to` = `from` it cannot.
      if (to === from) throw new TypeError(`transitions.${from} cannot list ${from} itself`)
    }
  }
  // A frozen copy: editing the caller's object later cannot change what the guard allows.
  return Object.freeze(Object.fromEntries(entries.map(([from, targets]) => [from, Object.freeze([...targets])]))) as T
}
