// Racers across processes: 20 processes, each with its own connection, run idem.transaction on
// the same key at the same instant. Exactly one executes and the 19 others replay its result; when
// the first holder of a key rolls back while the others wait on it, exactly one of them executes.

import type { ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { createTestPool } from '../../test/support/stores/mysql/mysql.test-helper.js'
import { newPool } from '../../test/support/stores/postgres/postgres.test-helper.js'
import { waitFor } from '../../test/support/stores/redis/redis-server.test-helper.js'
import {
  type ChildScript,
  collectStderr,
  killHard,
  prepareChild,
  spawnChild,
  targetOf,
} from '../../test/support/transaction/transaction-child.test-helper.js'
import type { RacerCommand, RacerReply, RacerSetup } from '../../test/support/transaction/transaction-racer.worker.js'
import {
  mysqlRig,
  postgresRig,
  sqliteRig,
  type TransactionRig,
} from '../../test/support/transaction/transaction-rigs.test-helper.js'
import type { SqlDialect } from '../sql/core/executor.js'
import type { MysqlStore } from '../stores/mysql/mysql-store.js'

const RACERS = 20
const ROUNDS = 5
const ROLLBACK_ROUNDS = 2
const SCOPE = 'racers'
const URLS = { postgres: SERVICES.PostgreSQL.url, mysql: SERVICES.MariaDB.url }

type Command = RacerCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never

interface Racer {
  index: number
  /** Its server session per database (null for SQLite), once it is connected. */
  ready: Promise<Record<string, number | null>>
  /** Send `command` under a new id; the id, to read its replies. */
  send(command: Command, id?: number): number
  /** The next reply to command `id`. */
  reply(id: number): Promise<RacerReply>
  child: ChildProcess
}

let ids = 0

function startRacer(worker: ChildScript, index: number, targets: RacerSetup['targets']): Racer {
  const setup: RacerSetup = { index, scope: SCOPE, targets }
  const child = spawnChild(worker, [JSON.stringify(setup)], true)
  const stderr = collectStderr(child)
  child.stderr?.on('data', (d) => process.stdout.write(String(d)))
  const queues = new Map<number, RacerReply[]>()
  const waiters = new Map<number, (reply: RacerReply) => void>()
  let failed: Error | undefined
  const failures = new Set<(error: Error) => void>()
  let ready: (sessions: Record<string, number | null>) => void = () => {}
  const readyPromise = new Promise<Record<string, number | null>>((resolve, reject) => {
    ready = resolve
    failures.add(reject)
  })
  child.on('message', (message: RacerReply | { ready: true; sessions: Record<string, number | null> }) => {
    if ('ready' in message) return ready(message.sessions)
    const waiter = waiters.get(message.id)
    waiters.delete(message.id)
    if (waiter !== undefined) return waiter(message)
    queues.set(message.id, [...(queues.get(message.id) ?? []), message])
  })
  child.once('exit', (code, signal) => {
    failed = new Error(`racer ${index} exited (${signal ?? code}); stderr:\n${stderr()}`)
    for (const fail of failures) fail(failed)
  })
  return {
    index,
    ready: readyPromise,
    child,
    send(command, id = ++ids) {
      child.send({ ...command, id })
      return id
    },
    reply(id) {
      const queued = queues.get(id)?.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      if (failed !== undefined) return Promise.reject(failed)
      return new Promise((resolve, reject) => {
        failures.add(reject)
        waiters.set(id, (reply) => {
          failures.delete(reject)
          resolve(reply)
        })
      })
    },
  }
}

/** Waits until the given sessions are all blocked on a lock (PostgreSQL, MariaDB). */
type LockWatch = (sessions: readonly number[]) => Promise<void>

interface Case {
  name: string
  dialect: SqlDialect
  rig: () => Promise<TransactionRig>
  watch?: (rig: TransactionRig) => { until: LockWatch; close(): Promise<void> }
}

function pgWatch(_rig: TransactionRig) {
  const pool: pg.Pool = newPool(1)
  const count = async (ids: readonly number[]) =>
    (
      await pool.query(
        "SELECT count(*)::int AS c FROM pg_stat_activity WHERE pid = ANY ($1::int[]) AND wait_event_type = 'Lock'",
        [ids],
      )
    ).rows[0].c as number
  return {
    until: (ids: readonly number[]) =>
      waitFor(`${ids.length} PostgreSQL racers to wait on a lock`, async () => (await count(ids)) === ids.length),
    close: () => pool.end(),
  }
}

function mysqlWatch(rig: TransactionRig) {
  const pool: mysql.Pool = createTestPool(1)
  const claim = `INSERT INTO \`${(rig.store as MysqlStore).table}\` %`
  // Sessions inside the claim's INSERT: it cannot finish while the holder's row lock stands.
  // (INNODB_TRX would say LOCK WAIT more directly, but MariaDB 10.11 leaves some waiters out of it.)
  const count = async (ids: readonly number[]) => {
    const [rows] = (await pool.query(
      "SELECT COUNT(*) AS c FROM information_schema.PROCESSLIST WHERE ID IN (?) AND COMMAND = 'Query' AND INFO LIKE ?",
      [ids, claim],
    )) as unknown as [{ c: number }[]]
    return Number(rows[0]?.c)
  }
  return {
    until: (ids: readonly number[]) =>
      waitFor(`${ids.length} MariaDB racers to wait on a lock`, async () => (await count(ids)) === ids.length),
    close: () => pool.end(),
  }
}

const cases: Case[] = [{ name: 'SQLite (one file)', dialect: 'sqlite', rig: sqliteRig }]
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  cases.push({ name: 'PostgreSQL', dialect: 'postgres', rig: postgresRig, watch: pgWatch })
}
if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  cases.push({ name: 'MariaDB', dialect: 'mysql', rig: mysqlRig, watch: mysqlWatch })
}

describe(`idem.transaction raced by ${RACERS} processes, one connection each`, () => {
  const rigs = new Map<SqlDialect, TransactionRig>()
  const sessions: Record<string, number | null>[] = []
  let racers: Racer[] = []
  let worker: ChildScript | undefined
  beforeAll(async () => {
    for (const { dialect, rig } of cases) rigs.set(dialect, await rig())
    const targets = [...rigs.values()].map((rig) => targetOf(rig, URLS))
    const script = await prepareChild('./transaction-racer.worker.ts')
    worker = script
    racers = Array.from({ length: RACERS }, (_, index) => startRacer(script, index, targets))
    sessions.push(...(await Promise.all(racers.map((racer) => racer.ready))))
  }, 90_000)
  afterAll(async () => {
    await Promise.all(racers.map((racer) => killHard(racer.child)))
    worker?.dispose()
    for (const rig of rigs.values()) await rig.cleanup()
  })

  /** Each racer's answer to `command`, sent to all of them at once. */
  const everyone = (command: Command) => Promise.all(racers.map((racer) => racer.reply(racer.send(command))))

  /** How the replies split, and the distinct values they carry. */
  function tally(replies: readonly RacerReply[]) {
    const counts: Record<string, number> = {}
    const values = new Map<string, unknown>()
    for (const reply of replies) {
      const outcome = 'status' in reply ? reply.status : 'error' in reply ? `error: ${reply.error}` : 'holding'
      counts[outcome] = (counts[outcome] ?? 0) + 1
      if ('value' in reply) values.set(JSON.stringify(reply.value), reply.value)
    }
    const executed = replies.find((reply) => 'status' in reply && reply.status === 'executed')
    return { counts, values: [...values.values()], winner: executed && 'value' in executed ? executed.value : null }
  }

  for (const { name, dialect, watch } of cases) {
    describe(`on ${name}`, () => {
      it(`executes ${RACERS} simultaneous duplicates once and replays the winner's result to the other ${RACERS - 1} (${ROUNDS} keys)`, async () => {
        const rig = rigs.get(dialect) as TransactionRig
        const idem = rig.idem({ scope: SCOPE })
        const observed: unknown[] = []
        const expected: unknown[] = []
        for (let round = 0; round < ROUNDS; round++) {
          const key = `race-${round}`
          // A common start instant a little ahead, so that no racer gets a head start from IPC.
          const replies = await everyone({ op: 'run', dialect, key, at: Date.now() + 150 })
          const { counts, values, winner } = tally(replies)
          observed.push({
            key,
            counts,
            values,
            effect: await rig.effect(key),
            record: (await rig.store.get(idem.recordId(key)))?.state,
          })
          expected.push({
            key,
            counts: { executed: 1, replayed: RACERS - 1 },
            values: [{ key, racer: (winner as { racer?: number } | null)?.racer ?? 'a racer' }],
            effect: 1,
            record: 'completed',
          })
        }
        expect(observed).toEqual(expected)
      }, 60_000)

      it(`lets exactly one of ${RACERS - 1} waiting racers execute, and the others replay its result, when the first holder rolls back (${ROLLBACK_ROUNDS} keys)`, async () => {
        const rig = rigs.get(dialect) as TransactionRig
        const locks = watch?.(rig)
        const observed: unknown[] = []
        const expected: unknown[] = []
        try {
          for (let round = 0; round < ROLLBACK_ROUNDS; round++) {
            const key = `rollback-${round}`
            const [holder, ...others] = racers.slice(round).concat(racers.slice(0, round)) as [Racer, ...Racer[]]
            const hold = holder.send({ op: 'hold', dialect, key })
            expect(await holder.reply(hold)).toMatchObject({ holding: true })
            let released = false
            const replies = Promise.all(
              others.map(async (racer) => {
                const reply = await racer.reply(racer.send({ op: 'run', dialect, key, at: Date.now() }))
                return { reply, afterRelease: released }
              }),
            )
            // Read only after the release below; meanwhile a failure here must not go unhandled.
            replies.catch(() => {})
            // Let them all queue on the holder's lock: watched on a server, given time on SQLite
            // (a racer waiting in SQLite's busy handler cannot be seen from outside).
            const waiting = others.map((racer) => sessions[racer.index]?.[dialect])
            if (locks !== undefined) await locks.until(waiting as number[])
            else await sleep(300)
            released = true
            holder.send({ op: 'release' }, hold)
            const holderEnd = await holder.reply(hold)
            const answers = await replies
            const { counts, values, winner } = tally(answers.map((a) => a.reply))
            const winnerIndex = (winner as { racer?: number } | null)?.racer
            observed.push({
              key,
              holderEnd,
              counts,
              winnerIsTheHolder: winnerIndex === holder.index,
              values,
              finishedWhileHeld: answers.filter((a) => !a.afterRelease).length,
              effect: await rig.effect(key),
            })
            expected.push({
              key,
              holderEnd: { id: hold, error: `racer ${holder.index} rolls back on purpose` },
              counts: { executed: 1, replayed: RACERS - 2 },
              winnerIsTheHolder: false,
              values: [{ key, racer: winnerIndex }],
              finishedWhileHeld: 0,
              effect: 1,
            })
          }
        } finally {
          await locks?.close()
        }
        expect(observed).toEqual(expected)
      }, 60_000)
    })
  }
})
