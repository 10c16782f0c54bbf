// Transaction mode (inbox): the claim, the function's writes and the stored outcome commit in
// one transaction of the caller's database, or roll back together. No lease is needed: a claim is
// invisible until commit, a racer waits on the record's row lock, and a crash rolls back all.

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IdempotencyStore } from '../contract/types.js'
import { FingerprintMismatchError, LeaseLostError } from '../errors.js'
import type { SqlDatabase, SqlExecutor, TransactionEdges } from '../sql/core/executor.js'
import { hasInbox, type Inbox, type InboxClaim } from '../sql/core/inbox.js'
import { insideCallerTransaction } from '../sql/core/savepoint.js'
import { encodeError, encodeValue } from './codec.js'
import { derivedKey } from './derived-key.js'
import type { RunInput } from './options.js'
import { FIRST_POLL_MS, type NotAcquired, type Pipeline, type Prepared } from './pipeline.js'
import { timed } from './probe.js'

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

/** What one transaction did: ran the function and stored its outcome, or found the key taken (settled after it ends). */
type Attempt<T> = { outcome: 'executed'; value: T; stored: string; attempt: number } | NotAcquired

export async function runInTransaction<Tx, T>(
  core: Pipeline,
  db: SqlDatabase<Tx>,
  input: TransactionInput,
  fn: (tx: Tx, ctx: TransactionContext) => Promise<T> | T,
): Promise<TransactionOutcome<T>> {
  const inbox = inboxFor(core.givenStore, db)
  if (typeof fn !== 'function') throw new TypeError('idem.transaction needs a function as its third argument')
  const p = core.prepare(input)
  if ((input as { failOpen?: unknown }).failOpen !== undefined) {
    throw new TypeError(
      'failOpen does not apply to idem.transaction: the records live in the same database as your writes',
    )
  }
  const probe = core.activeProbe()
  if (probe?.aroundRun === undefined) return runPrepared(core, db, inbox, p, fn)
  return probe.aroundRun(
    { kind: 'transaction', scope: p.base.scope, key: p.base.key, id: p.base.id, origin: input.origin },
    () => runPrepared(core, db, inbox, p, fn),
  )
}

async function runPrepared<Tx, T>(
  core: Pipeline,
  db: SqlDatabase<Tx>,
  inbox: Inbox,
  p: Prepared,
  fn: (tx: Tx, ctx: TransactionContext) => Promise<T> | T,
): Promise<TransactionOutcome<T>> {
  const { base, policy, fingerprint } = p
  const { key, id } = base
  const { events } = core

  const cached = core.cached<T>(p)
  if (cached !== undefined) return cached

  const waitUntil = Date.now() + policy.waitTimeoutMs
  let pollMs = FIRST_POLL_MS
  let conflicts = 0
  for (;;) {
    const startedAt = performance.now()
    let outcome: Attempt<T>
    let claimed = false
    let joined = false
    try {
      outcome = await inTransaction(db, async (tx, sql, edges): Promise<Attempt<T>> => {
        joined = insideCallerTransaction()
        const token = randomUUID()
        // What a function that returns nothing stores: a store may write a new key as completed
        // with it in the claim, and then such a function needs no completion (see Inbox.claim).
        const settledAs = inbox.settles
          ? encodeValue(undefined, core.maxResultBytes, id, core.cipher, fingerprint)
          : undefined
        // Through `timed` only while a probe times store calls: its closure and promise are per call.
        const timing = core.activeProbe()
        const claimedAt = performance.now()
        const begun: InboxClaim =
          timing?.storeCall === undefined
            ? await inbox.claim(sql, id, fingerprint, token, policy.leaseMs, policy.ttlMs, edges, settledAs)
            : await timed(timing, 'begin', () =>
                inbox.claim(sql, id, fingerprint, token, policy.leaseMs, policy.ttlMs, edges, settledAs),
              )
        claimed = true
        // A mismatch is thrown inside, so the transaction rolls back; a replay is settled (and
        // cached) only once the transaction has ended.
        if (begun.outcome === 'mismatch') throw core.mismatch(base)
        if (begun.outcome !== 'acquired') return unlessOwnSettled(begun, id, tx)
        const settled = 'settled' in begun
        const { attempt, recovered } = begun
        if (recovered) events.emit('takeover', { scope: base.scope, key: base.key, id: base.id, attempt })
        const ctx: TransactionContext = {
          key,
          scope: policy.scope,
          attempt,
          recovered,
          sql,
          derivedKey: (name) => derivedKey(id, name),
        }
        const probe = core.activeProbe()
        const execute = (): Promise<T> | T =>
          probe?.aroundExecution === undefined
            ? fn(tx, ctx)
            : probe.aroundExecution(
                { kind: 'transaction', scope: base.scope, key: base.key, id: base.id, attempt, recovered },
                async () => fn(tx, ctx),
              )
        let value: T
        if (settled && isHandle(tx)) {
          const open = openSettled.get(tx) ?? new Map<string, number>()
          openSettled.set(tx, open.set(id, Date.now() + policy.leaseMs))
          try {
            value = await execute()
          } finally {
            open.delete(id)
          }
        } else {
          value = await execute()
        }
        // A result that cannot be stored rolls everything back: nothing happened, and the
        // error says why (RESULT_TOO_LARGE, RESULT_NOT_SERIALIZABLE).
        const outcomeSettled = settled && value === undefined && settledAs !== undefined
        const stored = outcomeSettled
          ? settledAs
          : encodeValue(value, core.maxResultBytes, id, core.cipher, fingerprint)
        let completed: boolean
        if (outcomeSettled) {
          // The claim already wrote this outcome: the commit alone stores it. The ttl is counted
          // from the claim, as the store wrote it.
          completed = performance.now() - claimedAt < policy.ttlMs
        } else {
          const timingCompletion = core.activeProbe()
          completed =
            timingCompletion?.storeCall === undefined
              ? await inbox.complete(sql, id, token, stored, policy.ttlMs, edges, settled)
              : await timed(timingCompletion, 'complete', () =>
                  inbox.complete(sql, id, token, stored, policy.ttlMs, edges, settled),
                )
        }
        if (!completed) {
          // Only if the record expired while the function ran (a ttl shorter than the work).
          throw new LeaseLostError(`"${key}" outlived its record's ttl inside the transaction; nothing was committed`, {
            recordId: id,
          })
        }
        return { outcome: 'executed', value, stored, attempt }
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
      events.emit('released', { scope: base.scope, key: base.key, id: base.id, error })
      if (core.isFinal(policy, error)) await storeFinalError(core, db, inbox, p, error)
      throw error
    }

    if (outcome.outcome === 'executed') {
      core.stored(p, outcome.stored)
      core.executed(base, outcome.attempt, performance.now() - startedAt, false)
      return { status: 'executed', value: outcome.value }
    }
    // Only a `run()` claim holds a key in progress: a transaction's claim is never visible.
    if (outcome.outcome === 'in_progress' && core.waits(policy, waitUntil)) {
      pollMs = await core.pause(base, outcome.retryAfterMs, waitUntil, pollMs)
      continue
    }
    return core.settle<T>(p, outcome)
  }
}

/**
 * `db.transaction`, or where the adapter offers it the transaction whose BEGIN can travel with
 * the claim and COMMIT with the completion (one round trip each instead of two).
 */
function inTransaction<Tx, R>(
  db: SqlDatabase<Tx>,
  fn: (tx: Tx, sql: SqlExecutor, edges: TransactionEdges | undefined) => Promise<R>,
): Promise<R> {
  if (db.transactionWithEdges !== undefined) return db.transactionWithEdges(fn)
  return db.transaction((tx, sql) => fn(tx, sql, undefined))
}

/**
 * An `isFinal` error: the function's writes are already rolled back; record the error in a
 * transaction of its own, so that duplicates replay it instead of running the function again.
 */
async function storeFinalError(
  core: Pipeline,
  db: SqlDatabase<unknown>,
  inbox: Inbox,
  p: Prepared,
  error: unknown,
): Promise<void> {
  const { base, policy, fingerprint } = p
  const stored = encodeError(error, core.maxResultBytes, base.id, core.cipher, fingerprint)
  const recorded = await inTransaction(db, async (_tx, sql, edges) => {
    const token = randomUUID()
    const begun = await inbox.claim(sql, base.id, fingerprint, token, policy.leaseMs, policy.ttlMs, edges)
    if (begun.outcome !== 'acquired') return false
    return inbox.complete(sql, base.id, token, stored, policy.ttlMs, edges)
  })
  if (recorded) {
    core.stored(p, stored)
    core.events.emit('executed', {
      scope: base.scope,
      key: base.key,
      id: base.id,
      attempt: 1,
      durationMs: 0,
      failed: true,
    })
  }
}

/**
 * The keys settled in their claim whose function is running, by the transaction handle the
 * function was given (a pg PoolClient): until when each one's claim would have been leased.
 */
const openSettled = new WeakMap<object, Map<string, number>>()

/**
 * A claim's answer, except inside the function of a transaction that settled `id` in its claim: a
 * nested call for the same key on that same transaction (its handle `tx`) reads the completed
 * record written up front, which is not an outcome yet. It is answered in progress, as it would
 * be without settling (the record is the enclosing call's claim until its transaction ends).
 * Another transaction never reads that record before COMMIT.
 */
function unlessOwnSettled(begun: NotAcquired, id: string, tx: unknown): NotAcquired {
  if (begun.outcome !== 'completed' || !isHandle(tx)) return begun
  const leaseUntil = openSettled.get(tx)?.get(id)
  if (leaseUntil === undefined) return begun
  return { outcome: 'in_progress', leaseUntil, retryAfterMs: Math.max(0, leaseUntil - Date.now()), attempt: 1 }
}

/** A transaction handle a WeakMap can hold: an object, or a function (a Knex trx is one). */
const isHandle = (tx: unknown): tx is object => (typeof tx === 'object' && tx !== null) || typeof tx === 'function'

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
