// Where transaction mode's time goes: the same transaction statement by statement (BEGIN, claim,
// business, complete, COMMIT) on one held connection, next to the bare one, and what fewer
// statements would give: no completion UPDATE (a function whose result needs none), and one
// change per database that each saves a round trip or a B-tree. Variants alternate per
// transaction, so drift touches all; figures are medians.

import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import { encodeValue } from '../../src/core/codec.js'
import { fingerprintOf } from '../../src/core/fingerprint.js'
import type { TransactionEdges } from '../../src/sql/core/executor.js'
import type { Inbox } from '../../src/sql/core/inbox.js'
import { NOW_MS } from '../../src/stores/mysql/mysql-procedures.js'
import { COLUMNS, fingerprintToBytes, idToBytes } from '../../src/stores/mysql/mysql-rows.js'
import { NOW_MS as PG_NOW_MS } from '../../src/stores/postgres/postgres-schema.js'
import type { PostgresStore } from '../../src/stores/postgres/postgres-store.js'
import { sqliteInbox } from '../../src/stores/sqlite/sqlite-inbox.js'
import { sqliteSchema } from '../../src/stores/sqlite/sqlite-schema.js'
import type { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js'
import { median } from '../lib/measure.js'
import { formatTable } from '../lib/report.js'
import { idemOn, LEASE_MS, resultOf, SCOPE, type Session, SUBSCRIPTIONS, type Target, TTL_MS } from './targets.js'

const COLUMNS_SHOWN = ['begin', 'claim', 'business', 'complete', 'commit'] as const
type Column = (typeof COLUMNS_SHOWN)[number]

interface Ctx {
  s: Session
  /** The transaction's edges, as the pool adapters give them (unused on SQLite). */
  edges: TransactionEdges
  id: string
  token: string
  fingerprint: string
  stored: string
  sub: number
}
type Step = [Column, (ctx: Ctx) => Promise<unknown>]
interface Variant {
  label: string
  /** Round trips (statements on SQLite) per transaction. */
  trips: number
  steps: Step[]
}

const begin: Step = ['begin', (c) => c.s.begin()]
/** What a function that returns nothing stores (no cipher). */
const SETTLED = encodeValue(undefined, 1 << 20, '')
const commit: Step = ['commit', (c) => c.s.commit()]

/**
 * The bare transaction, then Idem's statements as idem.transaction sends them over a pool: on the
 * servers BEGIN travels with the claim (its time under claim) and COMMIT with the completion (its
 * time under COMMIT), so a new key costs the bare transaction's round trips plus none; then the
 * same with BEGIN and COMMIT on their own, as before that change.
 */
function commonVariants(target: Target, inbox: Inbox): Variant[] {
  const business: Step = ['business', (c) => target.business(c.s.sql, c.sub)]
  const claim: Step = ['claim', (c) => inbox.claim(c.s.sql, c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS)]
  const complete: Step = ['complete', (c) => inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS)]
  const bare: Variant = { label: 'bare: BEGIN, UPDATE+INSERT, COMMIT', trips: 4, steps: [begin, business, commit] }
  if (inbox.dialect === 'sqlite') {
    // The claim of a new key settles it (see the PostgreSQL variants below): a value replaces the
    // result, and a function that returns nothing needs no completion.
    const { settle, resettle } = settledSteps(inbox, false)
    return [
      bare,
      { label: "Idem's statements by hand", trips: 6, steps: [begin, settle, business, resettle, commit] },
      { label: '  a function that returns nothing', trips: 5, steps: [begin, settle, business, commit] },
      {
        label: '  claimed in progress, then completed (before)',
        trips: 6,
        steps: [begin, claim, business, complete, commit],
      },
    ]
  }
  const fusedClaim: Step = [
    'claim',
    (c) => inbox.claim(c.s.sql, c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS, c.edges),
  ]
  const fusedComplete: Step = [
    'commit',
    async (c) => {
      if (!(await inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS, c.edges))) {
        throw new Error('bench: the completion found the claim gone')
      }
    },
  ]
  const claimTrips = inbox.dialect === 'mysql' ? 2 : 1
  if (inbox.dialect === 'postgres') {
    // PostgreSQL settles a new key in its claim (the record is written completed with what a
    // function that returns nothing stores): such a function's COMMIT goes alone, and a value
    // replaces the settled result in the completion's round trip.
    const { settle, resettle } = settledSteps(inbox, true)
    return [
      bare,
      {
        label: "Idem's statements by hand (BEGIN+settle, result+COMMIT)",
        trips: 4,
        steps: [settle, business, resettle],
      },
      { label: '  a function that returns nothing (COMMIT alone)', trips: 4, steps: [settle, business, commit] },
      {
        label: '  claimed in progress, then completed (before)',
        trips: 4,
        steps: [fusedClaim, business, fusedComplete],
      },
      {
        label: '  with BEGIN and COMMIT on their own (before that)',
        trips: 6,
        steps: [begin, claim, business, complete, commit],
      },
    ]
  }
  return [
    bare,
    {
      label: "Idem's statements by hand (BEGIN+claim, complete+COMMIT)",
      trips: 4,
      steps: [fusedClaim, business, fusedComplete],
    },
    { label: '  without the completion UPDATE', trips: 4, steps: [fusedClaim, business, commit] },
    {
      label: '  with BEGIN and COMMIT on their own (before)',
      trips: 5 + claimTrips,
      steps: [begin, claim, business, complete, commit],
    },
  ]
}

/**
 * The settling claim of a new key and the completion that replaces its result, as `inbox` sends
 * them: with the transaction's edges on the servers (BEGIN in the claim's round trip, COMMIT in the
 * completion's, whose time then shows under COMMIT), without on SQLite.
 */
function settledSteps(inbox: Inbox, withEdges: boolean): { settle: Step; resettle: Step } {
  const edges = (c: Ctx) => (withEdges ? c.edges : undefined)
  return {
    settle: [
      'claim',
      async (c) => {
        const begun = await inbox.claim(c.s.sql, c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS, edges(c), SETTLED)
        if (!('settled' in begun)) throw new Error('bench: a new key was not settled in its claim')
      },
    ],
    resettle: [
      withEdges ? 'commit' : 'complete',
      async (c) => {
        if (!(await inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS, edges(c), true))) {
          throw new Error('bench: the completion found the settled record gone')
        }
      },
    ],
  }
}

/**
 * The completion without touching `expires_at`: the claim already set one (its ttl counted from
 * the claim), and leaving the indexed column alone spares an index update (on PostgreSQL the
 * UPDATE can then be HOT).
 */
function keepExpiry(target: Target, inbox: Inbox): Variant {
  const set = "SET state = 'completed', token = NULL, lease_until = NULL, result ="
  let complete: Step[1]
  switch (inbox.dialect) {
    case 'postgres': {
      const table = (target.store as PostgresStore).names.qualifiedTable
      const update = `UPDATE ${table} ${set} $3, updated_at = ${PG_NOW_MS} WHERE id = $1 AND token = $2`
      complete = (c) => c.s.sql.execute(update, [c.id, c.token, Buffer.from(c.stored)])
      break
    }
    case 'mysql': {
      const update = `UPDATE ${inbox.table} ${set} ?, updated_at = ${NOW_MS} WHERE id = ? AND token = ?`
      complete = (c) => c.s.sql.execute(update, [Buffer.from(c.stored), idToBytes(c.id), c.token])
      break
    }
    case 'sqlite': {
      const update = `UPDATE ${inbox.table} ${set} ?, updated_at = ? WHERE id = ? AND token = ?`
      complete = (c) => c.s.sql.execute(update, [c.stored, Date.now(), c.id, c.token])
      break
    }
  }
  return {
    label: 'what if the completion left expires_at alone',
    trips: inbox.dialect === 'mysql' ? 7 : 6,
    steps: [
      begin,
      ['claim', (c) => inbox.claim(c.s.sql, c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS)],
      ['business', (c) => target.business(c.s.sql, c.sub)],
      ['complete', complete],
      commit,
    ],
  }
}

function whatIf(target: Target): Variant[] {
  return [keepExpiry(target, target.store.inbox), ...oneChange(target)]
}

/** Changes per database, each saving a statement's work, a round trip or a B-tree. */
function oneChange(target: Target): Variant[] {
  const business: Step = ['business', (c) => target.business(c.s.sql, c.sub)]
  switch (target.store.inbox.dialect) {
    case 'postgres': {
      // A new key claimed by a plain INSERT (1 row = new): the begin function only when it existed.
      const table = (target.store as PostgresStore).names.qualifiedTable
      const now = PG_NOW_MS
      const insert = `INSERT INTO ${table} (id, state, fingerprint, token, lease_until, attempt, result, created_at, updated_at, expires_at)
        VALUES ($1, 'in_progress', $2, $3, ${now} + $4, 1, NULL, ${now}, ${now}, ${now} + greatest($4, $5))
        ON CONFLICT (id) DO NOTHING`
      const { inbox } = target.store
      return [
        {
          label: 'what if a new key were claimed by a plain INSERT',
          trips: 6,
          steps: [
            begin,
            [
              'claim',
              async (c) => {
                const params = [c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS]
                const { affectedRows } = await c.s.sql.execute(insert, params)
                if (affectedRows !== 1) throw new Error('bench: the key was not new')
              },
            ],
            business,
            ['complete', (c) => inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS)],
            commit,
          ],
        },
      ]
    }
    case 'mysql': {
      // The claim's INSERT alone says "new" (1 affected row): the locking SELECT is only needed
      // when the record already existed.
      const table = `\`${target.store.inbox.table.replaceAll('`', '')}\``
      const insert = `INSERT INTO ${table} (${COLUMNS})
        VALUES (?, 'in_progress', ?, ?, ${NOW_MS} + ?, 1, NULL, ${NOW_MS}, ${NOW_MS}, ${NOW_MS} + GREATEST(?, ?))
        ON DUPLICATE KEY UPDATE id = id`
      const { inbox } = target.store
      return [
        {
          label: 'what if a new key were claimed by the INSERT alone',
          trips: 6,
          steps: [
            begin,
            [
              'claim',
              async (c) => {
                const params = [idToBytes(c.id), fingerprintToBytes(c.fingerprint), c.token, LEASE_MS, TTL_MS, LEASE_MS]
                const { affectedRows } = await c.s.sql.execute(insert, params)
                if (affectedRows !== 1) throw new Error('bench: the key was not new')
              },
            ],
            business,
            ['complete', (c) => inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS)],
            commit,
          ],
        },
      ]
    }
    case 'sqlite': {
      // The records as a WITHOUT ROWID table: the primary key is the table, one B-tree fewer per insert.
      const db = (target.store as SqliteStore).db as unknown as Database.Database
      const table = 'idem_records_without_rowid'
      db.exec(sqliteSchema(table).replace(/\n\);/, '\n) WITHOUT ROWID;'))
      const inbox = sqliteInbox(table, Date.now)
      return [
        {
          label: 'what if the records table were WITHOUT ROWID',
          trips: 6,
          steps: [
            begin,
            ['claim', (c) => inbox.claim(c.s.sql, c.id, c.fingerprint, c.token, LEASE_MS, TTL_MS)],
            business,
            ['complete', (c) => inbox.complete(c.s.sql, c.id, c.token, c.stored, TTL_MS)],
            commit,
          ],
        },
      ]
    }
  }
}

/**
 * SQLite only: pages each kind of transaction writes to the WAL (frames per COMMIT), with
 * automatic checkpoints off while it counts. A COMMIT writes one frame per page the transaction
 * changed, so this is what the record's B-trees add to the COMMIT, whatever the JavaScript costs.
 */
export async function walFramesLine(target: Target, iterations: number): Promise<string | undefined> {
  if (target.store.inbox.dialect !== 'sqlite') return undefined
  const db = (target.store as SqliteStore).db as unknown as Database.Database
  const idem = idemOn(target)
  const run = `${process.pid}-${Date.now()}`
  const framesPer = async (transaction: (i: number) => Promise<unknown>) => {
    db.pragma('wal_checkpoint(TRUNCATE)')
    for (let i = 0; i < iterations; i++) await transaction(i)
    const [state] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[]
    return ((state?.log ?? Number.NaN) / iterations).toFixed(1)
  }
  const autocheckpoint = db.pragma('wal_autocheckpoint', { simple: true }) as number
  db.pragma('wal_autocheckpoint = 0')
  try {
    const bare = await framesPer((i) => target.bare((i % SUBSCRIPTIONS) + 1))
    const withIdem = await framesPer((i) =>
      idem.transaction(target.db, { key: `frames-${run}-${i}`, payload: { i } }, async (_tx, ctx) => {
        await target.business(ctx.sql, (i % SUBSCRIPTIONS) + 1)
        return resultOf((i % SUBSCRIPTIONS) + 1)
      }),
    )
    return `WAL frames (pages written) per COMMIT, ${iterations} transactions each: bare ${bare}, idem.transaction ${withIdem}`
  } finally {
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`)
  }
}

/** The profile table of `target`, `iterations` transactions per variant. */
export async function profile(target: Target, iterations: number): Promise<string> {
  const variants = [...commonVariants(target, target.store.inbox), ...whatIf(target)]
  const idem = idemOn(target)
  const steps = variants.map(() => new Map<Column, number[]>())
  const totals: number[][] = variants.map(() => [])
  const idemTotals: number[] = []
  const run = `${process.pid}-${Date.now()}`
  for (let i = 0; i < iterations; i++) {
    const sub = (i % SUBSCRIPTIONS) + 1
    // Every variant once per iteration, starting from a different one each time.
    for (let k = 0; k <= variants.length; k++) {
      const v = (i + k) % (variants.length + 1)
      const key = `profile-${run}-${v}-${i}`
      const payload = { subscription: sub, amount: 999 }
      if (v === variants.length) {
        const startedAt = performance.now()
        await idem.transaction(target.db, { key, payload }, async (_tx, ctx) => {
          await target.business(ctx.sql, sub)
          return resultOf(sub)
        })
        idemTotals.push(performance.now() - startedAt)
        continue
      }
      const id = `${SCOPE}:${key}`
      // Prepared untimed: the JavaScript around the statements is the idem.transaction line's.
      const values = {
        id,
        token: randomUUID(),
        fingerprint: fingerprintOf(payload),
        stored: encodeValue(resultOf(sub), 1 << 20, id),
        sub,
      }
      // From the pool checkout on, as idem.transaction's time is (its adapter checks out too).
      const startedAt = performance.now()
      const session = await target.session()
      const ctx: Ctx = { s: session, edges: session.edges(), ...values }
      let last = performance.now()
      try {
        for (const [column, step] of (variants[v] as Variant).steps) {
          await step(ctx)
          const now = performance.now()
          const list = (steps[v] as Map<Column, number[]>).get(column) ?? []
          list.push(now - last)
          ;(steps[v] as Map<Column, number[]>).set(column, list)
          last = now
        }
      } finally {
        session.release()
      }
      ;(totals[v] as number[]).push(performance.now() - startedAt)
    }
  }
  const bareTotal = median(totals[0] as number[])
  const us = (ms: number) => (Number.isNaN(ms) ? '-' : (ms * 1000).toFixed(0))
  const lines = variants.map((variant, v) => {
    const total = median(totals[v] as number[])
    return [
      variant.label,
      String(variant.trips),
      ...COLUMNS_SHOWN.map((c) => us(median((steps[v] as Map<Column, number[]>).get(c) ?? []))),
      us(total),
      (total / bareTotal).toFixed(2),
    ]
  })
  const idemTotal = median(idemTotals)
  const idemTrips = String((variants[1] as Variant).trips)
  const idemLine = ['idem.transaction (whole, with its core)', idemTrips, '', '', '', '', '', us(idemTotal)]
  lines.splice(1, 0, [...idemLine, (idemTotal / bareTotal).toFixed(2)])
  const trips = target.store.inbox.dialect === 'sqlite' ? 'statements' : 'round trips'
  return formatTable(
    [
      'medians, µs (total: from pool checkout to release)',
      trips,
      'BEGIN',
      'claim',
      'business',
      'complete',
      'COMMIT',
      'total',
      'vs bare',
    ],
    lines,
  )
}
