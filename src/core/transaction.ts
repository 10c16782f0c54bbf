// Transaction mode (inbox): the claim, the function's writes and the stored outcome commit in
// one transaction of the caller's database, or roll back together. No lease is needed: a claim is
// invisible until commit, a racer waits on the record's row lock, and a crash rolls back all.

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IdempotencyStore } from '../contract/types.js'
import { assertFingerprint } from '../contract/validate.js'
import { FingerprintMismatchError, InProgressError, LeaseLostError } from '../errors.js'
import type { SqlDatabase, SqlExecutor } from '../sql/executor.js'
import { hasInbox, type Inbox } from '../sql/inbox.js'
import { insideCallerTransaction } from '../sql/savepoint.js'
import { decode, encodeError, encodeValue } from './codec.js'
import type { EventHub } from './events.js'
import { fingerprintOf } from './fingerprint.js'
import { recordId, validateKey } from './key.js'
import type { ResolvedPolicy, RunInput } from './options.js'
import type { ResultCache } from './result-cache.js'

export interface TransactionContext {
  key: string
  scope: string
  /** 1 for the first claim of this key; more when an earlier `run()` claim of it lapsed. */
  attempt: number
  recovered: boolean
  /** Idem's executor on this same transaction: hand it to state guards and version checks. */
  sql: SqlExecutor
  /** A stable key for an outbound call (pass it to a payment API's own Idempotency-Key). */
  derivedKey(name: string): string
}

/** `run` options, minus `failOpen`: the records live in the transaction's own database. */
export type TransactionInput = Omit<RunInput, 'failOpen'>

export interface TransactionOutcome<T> {
  status: 'executed' | 'replayed'
  value: T
}

export interface TransactionDeps {
  store: IdempotencyStore
  resolve(input: TransactionInput): ResolvedPolicy
  maxResultBytes: number
  events: EventHub
  cache: ResultCache | undefined
  derivedKey(id: string, name: string): string
}

type Attempt<T> =
  | { kind: 'executed'; value: T; stored: string }
  | { kind: 'replayed'; stored: string }
  | { kind: 'busy'; retryAfterMs: number }

export async function runInTransaction<Tx, T>(
  deps: TransactionDeps,
  db: SqlDatabase<Tx>,
  input: TransactionInput,
  fn: (tx: Tx, ctx: TransactionContext) => Promise<T> | T,
): Promise<TransactionOutcome<T>> {
  const inbox = inboxFor(deps.store, db)
  if (typeof fn !== 'function') throw new TypeError('idem.transaction needs a function as its third argument')
  const key = validateKey(input?.key)
  if ((input as { failOpen?: unknown }).failOpen !== undefined) {
    throw new TypeError(
      'failOpen does not apply to idem.transaction: the records live in the same database as your writes',
    )
  }
  const policy = deps.resolve(input)
  const id = recordId(policy.scope, key)
  const fingerprint = input.fingerprint ?? fingerprintOf(input.payload, policy.fingerprintFields)
  assertFingerprint(fingerprint)
  const base = { scope: policy.scope, key, id }
  const { events } = deps

  const cached = deps.cache?.get(id, Date.now())
  if (cached !== undefined) {
    if (cached.fingerprint !== fingerprint) throw mismatch(events, base)
    if (events.has('replayed')) events.emit('replayed', { ...base, cached: true })
    return replay<T>(cached.stored)
  }

  const waitUntil = Date.now() + policy.waitTimeoutMs
  let pollMs = 10
  let conflicts = 0
  for (;;) {
    const startedAt = performance.now()
    let attempt = 1
    let outcome: Attempt<T>
    let claimed = false
    let joined = false
    try {
      outcome = await db.transaction(async (tx, sql): Promise<Attempt<T>> => {
        joined = insideCallerTransaction()
        const token = randomUUID()
        const begun = await inbox.claim(sql, id, fingerprint, token, policy.leaseMs, policy.ttlMs)
        claimed = true
        switch (begun.outcome) {
          case 'completed':
            return { kind: 'replayed', stored: begun.result }
          case 'mismatch':
            throw mismatch(events, base)
          case 'in_progress':
            return { kind: 'busy', retryAfterMs: begun.retryAfterMs }
          case 'acquired': {
            attempt = begun.attempt
            if (begun.recovered) events.emit('takeover', { ...base, attempt })
            const ctx: TransactionContext = {
              key,
              scope: policy.scope,
              attempt,
              recovered: begun.recovered,
              sql,
              derivedKey: (name) => deps.derivedKey(id, name),
            }
            const value = await fn(tx, ctx)
            // A result that cannot be stored rolls everything back: nothing happened, and the
            // error says why (RESULT_TOO_LARGE, RESULT_NOT_SERIALIZABLE).
            const stored = encodeValue(value, deps.maxResultBytes, id)
            if (!(await inbox.complete(sql, id, token, stored, policy.ttlMs))) {
              // Only if the record expired while the function ran (a ttl shorter than the work).
              throw new LeaseLostError(
                `"${key}" outlived its record's ttl inside the transaction; nothing was committed`,
                {
                  recordId: id,
                },
              )
            }
            return { kind: 'executed', value, stored }
          }
        }
      })
    } catch (error) {
      if (error instanceof FingerprintMismatchError) throw error
      // The database gave up the claim itself (a deadlock among racers queued on a record whose
      // holder rolled back, or a serialization failure): nothing ran yet, so a transaction of our
      // own is simply run again. A caller's transaction may be gone entirely: theirs to retry.
      if (!claimed && !joined && isTransientConflict(error) && conflicts < MAX_CONFLICT_RETRIES) {
        conflicts++
        await sleep(Math.floor(Math.random() * 10 * conflicts) + 1)
        continue
      }
      events.emit('released', { ...base, error })
      if (isFinal(policy, error)) await storeFinalError(deps, db, inbox, policy, base, fingerprint, error)
      throw error
    }

    switch (outcome.kind) {
      case 'executed':
        deps.cache?.set(id, fingerprint, outcome.stored, policy.ttlMs, Date.now())
        if (events.has('executed')) {
          events.emit('executed', { ...base, attempt, durationMs: performance.now() - startedAt, failed: false })
        }
        return { status: 'executed', value: outcome.value }
      case 'replayed':
        deps.cache?.set(id, fingerprint, outcome.stored, policy.ttlMs, Date.now())
        if (events.has('replayed')) events.emit('replayed', { ...base, cached: false })
        return replay<T>(outcome.stored)
      case 'busy': {
        // Only a `run()` claim holds a key in progress: a transaction's claim is never visible.
        const remaining = waitUntil - Date.now()
        const waiting = policy.onInProgress === 'wait' && remaining > 0
        events.emit('in_progress', { ...base, retryAfterMs: outcome.retryAfterMs, waiting })
        if (!waiting) {
          throw new InProgressError(`"${key}" is being executed by another worker`, outcome.retryAfterMs, {
            recordId: id,
          })
        }
        await sleep(Math.max(1, Math.min(pollMs, outcome.retryAfterMs, remaining)))
        pollMs = Math.min(pollMs * 2, 250)
      }
    }
  }
}

/**
 * An `isFinal` error: the function's writes are already rolled back; record the error in a
 * transaction of its own, so that duplicates replay it instead of running the function again.
 */
async function storeFinalError(
  deps: TransactionDeps,
  db: SqlDatabase<unknown>,
  inbox: Inbox,
  policy: ResolvedPolicy,
  base: { scope: string; key: string; id: string },
  fingerprint: string,
  error: unknown,
): Promise<void> {
  const stored = encodeError(error, deps.maxResultBytes, base.id)
  const recorded = await db.transaction(async (_tx, sql) => {
    const token = randomUUID()
    const begun = await inbox.claim(sql, base.id, fingerprint, token, policy.leaseMs, policy.ttlMs)
    if (begun.outcome !== 'acquired') return false
    return inbox.complete(sql, base.id, token, stored, policy.ttlMs)
  })
  if (recorded) {
    deps.cache?.set(base.id, fingerprint, stored, policy.ttlMs, Date.now())
    deps.events.emit('executed', { ...base, attempt: 1, durationMs: 0, failed: true })
  }
}

function inboxFor(store: IdempotencyStore, db: SqlDatabase<unknown>): Inbox {
  if (!hasInbox(store)) {
    throw new TypeError(
      'idem.transaction needs a SQL store whose records live in your database (PostgresStore, MysqlStore or SqliteStore)',
    )
  }
  if (db === null || typeof db !== 'object' || typeof db.transaction !== 'function') {
    throw new TypeError(
      'idem.transaction needs a database adapter as its first argument: fromPg(pool), fromMysql2(pool), fromBetterSqlite3(db), fromKysely(db), fromKnex(knex) or fromDrizzle(db)',
    )
  }
  if (db.dialect !== store.inbox.dialect) {
    throw new TypeError(
      `idem.transaction: the store keeps records in ${store.inbox.dialect}, but the transaction is on ${db.dialect}; both must be the same database`,
    )
  }
  return store.inbox
}

const MAX_CONFLICT_RETRIES = 10

/**
 * A deadlock or serialization failure, by the driver's code on the error or on a wrapper's cause
 * (Drizzle wraps driver errors): PostgreSQL 40001 / 40P01, MySQL and MariaDB 1213 (deadlock) and
 * 1020 (MariaDB's snapshot-isolation conflict).
 */
export function isTransientConflict(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const { code, errno } = current as { code?: unknown; errno?: unknown }
    if (code === '40001' || code === '40P01' || code === 'ER_LOCK_DEADLOCK' || code === 'ER_CHECKREAD') return true
    if (errno === 1213 || errno === 1020) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

function mismatch(events: EventHub, base: { scope: string; key: string; id: string }): FingerprintMismatchError {
  events.emit('mismatch', base)
  return new FingerprintMismatchError(`"${base.key}" was already used with a different payload`, { recordId: base.id })
}

function isFinal(policy: ResolvedPolicy, error: unknown): boolean {
  try {
    return policy.isFinal(error) === true
  } catch {
    return false
  }
}

function replay<T>(stored: string): TransactionOutcome<T> {
  const decoded = decode(stored)
  if (!decoded.ok) throw decoded.error
  return { status: 'replayed', value: decoded.value as T }
}
