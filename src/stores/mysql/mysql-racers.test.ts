import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { dropSchema, MYSQL_URL, sleep } from '../../../test/support/stores/mysql/mysql.test-helper.js'
import type { BeginResult } from '../../contract/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { MysqlStore } from './mysql-store.js'

const CONNECTIONS = 25
const BEGINS_PER_CONNECTION = 2
const RACERS = CONNECTIONS * BEGINS_PER_CONNECTION
// Longer than a race of 50 begins takes on a loaded 2-core machine (over 300 ms was seen): a lease
// that lapsed during the race itself would let a second racer take the key over, legitimately.
const LEASE = 1_500
const TTL = 5_000

function tally(results: BeginResult[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1
  return counts
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe(`MysqlStore racers on ${CONNECTIONS} separate connections`, () => {
    const table = isolatedName('idem_race')
    let connections: mysql.Connection[] = []
    let stores: MysqlStore[] = []

    beforeAll(async () => {
      // Separate connections (not one pool), each with its own store, as separate processes have.
      connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => mysql.createConnection(MYSQL_URL)))
      stores = connections.map((client) => new MysqlStore({ client, table }))
      await stores[0]?.ensureSchema()
      await connections[0]?.query(`CREATE TABLE ${table}_effects (id VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`)
    })

    afterAll(async () => {
      await connections[0]?.query(`DROP TABLE IF EXISTS ${table}_effects`)
      if (connections[0]) await dropSchema(connections[0], table)
      await Promise.all(connections.map((c) => c.end()))
    })

    /** Every store begins `id` BEGINS_PER_CONNECTION times, all at once. */
    const race = (id: string) =>
      Promise.all(
        stores.flatMap((store) =>
          Array.from({ length: BEGINS_PER_CONNECTION }, () => store.begin(id, 'fp', LEASE, TTL)),
        ),
      )

    it(`lets exactly one of ${RACERS} concurrent begins acquire a new key, round after round`, async () => {
      for (let round = 0; round < 10; round++) {
        const results = await race(`new-${round}`)
        expect(tally(results), `round ${round}`).toEqual({ acquired: 1, in_progress: RACERS - 1 })
      }
    })

    it(`lets exactly one of ${RACERS} concurrent begins take over a lapsed lease`, async () => {
      // Many keys lapse at once, and each is raced by every connection at the same moment.
      for (let round = 0; round < 2; round++) {
        const ids = Array.from({ length: 10 }, (_, k) => `lapsed-${round}-${k}`)
        for (const id of ids) expect((await stores[0]?.begin(id, 'fp', LEASE, TTL))?.outcome).toBe('acquired')
        await sleep(LEASE + 10)
        const races = await Promise.all(ids.map(race))
        for (const [k, results] of races.entries()) {
          expect(tally(results), ids[k]).toEqual({ acquired: 1, in_progress: RACERS - 1 })
          const winner = results.find((r) => r.outcome === 'acquired')
          expect(winner).toMatchObject({ attempt: 2, recovered: true })
          const record = await stores[1]?.get(ids[k] as string)
          expect(record?.token).toBe(winner?.outcome === 'acquired' ? winner.token : undefined)
        }
      }
    })

    it(`lets exactly one of ${RACERS} concurrent begins acquire a key released a moment ago`, async () => {
      // The released row is deleted but not yet purged: racers inserting over it can deadlock
      // inside InnoDB, and the begin procedure must re-run the claim InnoDB rolled back.
      for (let round = 0; round < 5; round++) {
        const ids = Array.from({ length: 10 }, (_, k) => `released-${round}-${k}`)
        for (const id of ids) {
          const begun = await stores[0]?.begin(id, 'fp', LEASE, TTL)
          if (begun?.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun?.outcome}`)
          await stores[0]?.release(id, begun.token)
        }
        const races = await Promise.all(ids.map(race))
        for (const [k, results] of races.entries()) {
          expect(tally(results), ids[k]).toEqual({ acquired: 1, in_progress: RACERS - 1 })
          expect(results.find((r) => r.outcome === 'acquired')).toMatchObject({ attempt: 1, recovered: false })
        }
      }
    })

    it('survives mixed load on shared keys (claims, completions, releases, deletes, sweeps) without a deadlock', async () => {
      // A table of its own, holding only these five neighbouring keys; short leases and
      // retention, so that records lapse and expire while others rewrite them. Racers inserting
      // over a just-deleted row deadlock now and then inside InnoDB: the store must re-run
      // the claim InnoDB rolled back.
      const mixed = `${table}_mixed`
      const stores = connections.map((client) => new MysqlStore({ client, table: mixed }))
      await stores[0]?.ensureSchema()
      const [lease, ttl] = [20, 70]
      const failures: unknown[] = []
      const ignoreLeaseLost = (error: { code?: string }) => {
        if (error.code !== 'LEASE_LOST') throw error
      }
      const load = () =>
        Promise.all(
          stores.map(async (store, w) => {
            for (let i = 0; i < 120; i++) {
              const id = `mixed-${i % 5}`
              try {
                if (w % 6 === 0 && i % 3 === 0) await store.sweep(10)
                else if (w % 6 === 1 && i % 4 === 0) await store.delete(id)
                else if (w % 6 === 2 && i % 2 === 0) {
                  const ids = [id, `mixed-${(i + 2) % 5}`, id].map((x) => ({ id: x, fingerprint: 'fp' }))
                  await store.beginMany(ids, lease, ttl)
                } else {
                  const begun = await store.begin(id, 'fp', lease, ttl)
                  if (begun.outcome !== 'acquired') continue
                  if (i % 3 === 0) await store.complete(id, begun.token, '1', ttl).catch(ignoreLeaseLost)
                  else if (i % 3 === 1) await store.release(id, begun.token).catch(ignoreLeaseLost)
                  else await store.extend(id, begun.token, lease).catch(ignoreLeaseLost)
                }
              } catch (error) {
                failures.push(error)
              }
            }
          }),
        )
      try {
        for (let pass = 0; pass < 3; pass++) await load()
      } finally {
        await dropSchema(connections[0] as mysql.Connection, mixed)
      }
      expect(failures.map(String)).toEqual([])
    })

    for (const level of ['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE']) {
      it(`keeps one winner per claim when the sessions run ${level}`, async () => {
        const sessions = connections.slice(0, 10)
        for (const c of sessions) await c.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${level}`)
        // MariaDB 10.11.8+ can also refuse reads of rows changed after a transaction's snapshot.
        const snapshot = await connections[0]
          ?.query('SELECT @@innodb_snapshot_isolation')
          .then(() => true)
          .catch(() => false)
        if (snapshot) for (const c of sessions) await c.query('SET SESSION innodb_snapshot_isolation = ON')
        try {
          const on = stores.slice(0, 10)
          const id = `iso-${level.replace(' ', '-')}`
          const racing = () =>
            Promise.all(on.flatMap((store) => [store.begin(id, 'fp', LEASE, TTL), store.begin(id, 'fp', LEASE, TTL)]))
          const first = await racing()
          expect(tally(first)).toEqual({ acquired: 1, in_progress: 19 })
          await sleep(LEASE + 10)
          const takeover = await racing()
          expect(tally(takeover)).toEqual({ acquired: 1, in_progress: 19 })
          const winner = takeover.find((r) => r.outcome === 'acquired')
          if (winner?.outcome !== 'acquired') throw new Error('no winner')
          await on[3]?.extend(id, winner.token, LEASE)
          await on[4]?.complete(id, winner.token, '"done"', TTL)
          const replays = await racing()
          expect(replays.every((r) => r.outcome === 'completed' && r.result === '"done"')).toBe(true)
          expect(await on[5]?.delete(id)).toBe(true)
          expect(await on[6]?.get(id)).toBeNull()
        } finally {
          for (const c of sessions) await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ')
          if (snapshot) for (const c of sessions) await c.query('SET SESSION innodb_snapshot_isolation = OFF')
        }
      })
    }

    it('runs each effect exactly once when every connection runs the same key', async () => {
      for (let round = 0; round < 5; round++) {
        const key = `run-${round}`
        await connections[0]?.query(`INSERT INTO ${table}_effects (id, n) VALUES (?, 0)`, [key])
        const outcomes = await Promise.all(
          stores.map((store, i) => {
            const idem = new Idempotency({ store, scope: 'racers', onInProgress: 'wait', waitTimeout: '10s' })
            return idem.run({ key, payload: { round } }, async () => {
              await connections[i]?.query(`UPDATE ${table}_effects SET n = n + 1 WHERE id = ?`, [key])
              return { round }
            })
          }),
        )
        expect(outcomes.filter((o) => o.status === 'executed')).toHaveLength(1)
        expect(outcomes.filter((o) => o.status === 'replayed')).toHaveLength(CONNECTIONS - 1)
        expect(outcomes.every((o) => (o.value as { round: number }).round === round)).toBe(true)
      }
      const [rows] = await (connections[0] as mysql.Connection).query<mysql.RowDataPacket[]>(
        `SELECT id, n FROM ${table}_effects WHERE n <> 1`,
      )
      expect(rows).toEqual([])
    })

    it('runs overlapping batches from every connection at once, each id acquired once and completed once', async () => {
      // Every connection claims a shuffled 20 of 30 shared ids in one beginMany: the batches
      // overlap in every order, and each runs in one transaction (rows locked in id order).
      const ids = Array.from({ length: 30 }, (_, k) => `batch-${k}`)
      const shuffled = () =>
        ids
          .map((id) => ({ id, at: Math.random() }))
          .sort((a, b) => a.at - b.at)
          .slice(0, 20)
          .map(({ id }) => ({ id, fingerprint: 'fp' }))
      const batches = stores.map(() => shuffled())
      const begun = await Promise.all(stores.map((store, i) => store.beginMany(batches[i] ?? [], 60_000, TTL)))
      const acquired = begun.flatMap((results, i) =>
        results.flatMap((r, j) =>
          r.outcome === 'acquired' ? [{ store: i, id: batches[i]?.[j]?.id, token: r.token }] : [],
        ),
      )
      const claimedIds = new Set(batches.flat().map((item) => item.id))
      expect(acquired.map((a) => a.id).sort()).toEqual([...claimedIds].sort())
      for (const results of begun) for (const r of results) expect(['acquired', 'in_progress']).toContain(r.outcome)
      const completions = await Promise.all(
        stores.map((store, i) => {
          const mine = acquired.filter((a) => a.store === i).reverse()
          return store.completeMany(
            mine.map((a) => ({ id: a.id as string, token: a.token, result: `"${a.id}"` })),
            TTL,
          )
        }),
      )
      expect(completions.flat().every((o) => o === 'completed')).toBe(true)
      expect(completions.flat()).toHaveLength(claimedIds.size)
      const again = await stores[0]?.beginMany(
        [...claimedIds].map((id) => ({ id, fingerprint: 'fp' })),
        60_000,
        TTL,
      )
      expect(again?.map((r) => r.outcome === 'completed' && r.result)).toEqual([...claimedIds].map((id) => `"${id}"`))
    })

    it('writes nothing of a batch whose claim fails midway (one transaction per batch)', async () => {
      const [holder, batcher] = [connections[1], connections[2]]
      const store = stores[2]
      if (holder === undefined || batcher === undefined || store === undefined) throw new Error('no connections')
      expect((await stores[0]?.begin('held', 'fp', 60_000, TTL))?.outcome).toBe('acquired')
      await holder.query('START TRANSACTION')
      await holder.query(`SELECT id FROM \`${table}\` WHERE id = ? FOR UPDATE`, [Buffer.from('held')])
      await batcher.query('SET SESSION innodb_lock_wait_timeout = 1')
      try {
        // Claimed in id order: 'a-first' before 'held', whose lock wait times out.
        const items = ['z-last', 'held', 'a-first'].map((id) => ({ id, fingerprint: 'fp' }))
        await expect(store.beginMany(items, 60_000, TTL)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
      } finally {
        await batcher.query('SET SESSION innodb_lock_wait_timeout = DEFAULT')
        await holder.query('ROLLBACK')
      }
      expect(await store.get('a-first')).toBeNull()
      expect(await store.get('z-last')).toBeNull()
      // The connection is out of any transaction: the next batch commits.
      const items = ['a-first', 'z-last'].map((id) => ({ id, fingerprint: 'fp' }))
      expect((await store.beginMany(items, 60_000, TTL)).map((r) => r.outcome)).toEqual(['acquired', 'acquired'])
      expect(await stores[0]?.get('a-first')).toMatchObject({ state: 'in_progress' })
    })
  })
}
