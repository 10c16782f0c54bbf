import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService } from '../../../test/services.js'
import {
  backendPid,
  blockedBy,
  dropSchema,
  newClient,
  newPool,
  sleep,
} from '../../../test/support/stores/postgres/postgres.test-helper.js'
import type { BeginResult } from '../../contract/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { PostgresStore } from './postgres-store.js'

// One begin per connection at a time (pg 9 drops queueing on a busy Client), so 50 connections
// race for real; the end-to-end test uses the first RUNNERS of them.
const CLIENTS = 50
const RUNNERS = 10
const ROUNDS = 10

if (await requireService('PostgreSQL', 5432)) {
  describe('PostgresStore racing across separate connections', () => {
    const schema = isolatedName('idem_pg_race')
    const admin = newPool(4)
    let clients: pg.Client[] = []
    let stores: PostgresStore[] = []
    const table = `"${schema}".idem_records`

    beforeAll(async () => {
      clients = await Promise.all(Array.from({ length: CLIENTS }, () => newClient()))
      stores = clients.map((client) => new PostgresStore({ client: client, schema }))
      await stores[0]?.ensureSchema()
    })
    afterAll(async () => {
      await dropSchema(admin, schema)
      await Promise.all(clients.map((client) => client.end()))
      await admin.end()
    })

    const raceBegin = (id: string): Promise<BeginResult[]> =>
      Promise.all(stores.map((store) => store.begin(id, 'fp', 30_000, 60_000)))
    const tally = (results: BeginResult[]) => {
      const counts: Record<string, number> = {}
      for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1
      return counts
    }

    it(`lets exactly one of ${CLIENTS} begins on ${CLIENTS} connections acquire a new key`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const results = await raceBegin(`new-${round}`)
        expect(tally(results), `round ${round}`).toEqual({ acquired: 1, in_progress: CLIENTS - 1 })
      }
    })

    it('lets exactly one racer take over a lapsed lease, and one replace an expired record', async () => {
      for (let round = 0; round < ROUNDS; round++) {
        await stores[0]?.begin(`lapsed-${round}`, 'fp', 50, 60_000)
        await stores[0]?.begin(`expired-${round}`, 'fp', 50, 100)
      }
      await sleep(150)
      for (let round = 0; round < ROUNDS; round++) {
        const takeover = await raceBegin(`lapsed-${round}`)
        expect(tally(takeover), `round ${round}`).toEqual({ acquired: 1, in_progress: CLIENTS - 1 })
        expect(takeover.find((r) => r.outcome === 'acquired')).toMatchObject({ attempt: 2, recovered: true })
        const fresh = await raceBegin(`expired-${round}`)
        expect(tally(fresh), `round ${round}`).toEqual({ acquired: 1, in_progress: CLIENTS - 1 })
        expect(fresh.find((r) => r.outcome === 'acquired')).toMatchObject({ attempt: 1, recovered: false })
      }
    })

    it('runs each effect once when every connection runs the same key', async () => {
      await admin.query(`CREATE TABLE "${schema}".effects (id text PRIMARY KEY, n int NOT NULL)`)
      for (let round = 0; round < ROUNDS; round++) {
        const key = `effect-${round}`
        await admin.query(`INSERT INTO "${schema}".effects VALUES ($1, 0)`, [key])
        const statuses = await Promise.all(
          clients.slice(0, RUNNERS).map((client, i) => {
            const idem = new Idempotency({
              store: stores[i] as PostgresStore,
              scope: 'race',
              onInProgress: 'wait',
              waitTimeout: '10s',
            })
            return idem
              .run({ key, payload: { round } }, async () => {
                await client.query(`UPDATE "${schema}".effects SET n = n + 1 WHERE id = $1`, [key])
                return { round }
              })
              .then((out) => out.status)
          }),
        )
        expect(statuses.filter((s) => s === 'executed')).toHaveLength(1)
        expect(statuses.filter((s) => s === 'replayed')).toHaveLength(RUNNERS - 1)
      }
      const { rows } = await admin.query(`SELECT id, n FROM "${schema}".effects WHERE n <> 1`)
      expect(rows).toEqual([])
    })

    it('never deadlocks two batches that claim the same ids in opposite orders', async () => {
      const ids = Array.from({ length: 30 }, (_, i) => `batch-${i}`)
      for (let round = 0; round < ROUNDS; round++) {
        const forward = ids.map((id) => ({ id: `${id}-${round}`, fingerprint: 'fp' }))
        const backward = [...forward].reverse()
        const [a, b, c] = await Promise.all([
          stores[1]?.beginMany(forward, 30_000, 60_000),
          stores[2]?.beginMany(backward, 30_000, 60_000),
          stores[3]?.beginMany(forward, 30_000, 60_000),
        ])
        const acquired = [...(a ?? []), ...(b ?? []), ...(c ?? [])].filter((r) => r.outcome === 'acquired')
        expect(acquired).toHaveLength(ids.length)
      }
    })

    // The timelines below pin the interleavings the begin function exists for; an admin
    // transaction plays the concurrent racer and holds its write uncommitted while begin waits.
    it('answers in_progress when a concurrent insert commits while begin waits on it', async () => {
      const racer = await newClient()
      try {
        await racer.query('BEGIN')
        await racer.query(
          `INSERT INTO ${table} VALUES ('timeline-commit', 'in_progress', 'fp', 'racer', $1, 1, NULL, $2, $2, $3)`,
          [Date.now() + 30_000, Date.now(), Date.now() + 60_000],
        )
        const begun = stores[0]?.begin('timeline-commit', 'fp', 30_000, 60_000)
        await blockedBy(admin, await backendPid(racer))
        await racer.query('COMMIT')
        expect(await begun).toMatchObject({ outcome: 'in_progress', attempt: 1 })
      } finally {
        await racer.end()
      }
    })

    it('acquires when a concurrent insert rolls back while begin waits on it', async () => {
      const racer = await newClient()
      try {
        await racer.query('BEGIN')
        await racer.query(
          `INSERT INTO ${table} VALUES ('timeline-rollback', 'in_progress', 'fp', 'racer', $1, 1, NULL, $2, $2, $3)`,
          [Date.now() + 30_000, Date.now(), Date.now() + 60_000],
        )
        const begun = stores[0]?.begin('timeline-rollback', 'fp', 30_000, 60_000)
        await blockedBy(admin, await backendPid(racer))
        await racer.query('ROLLBACK')
        expect(await begun).toMatchObject({ outcome: 'acquired', attempt: 1, recovered: false })
      } finally {
        await racer.end()
      }
    })

    it('answers in_progress when a concurrent takeover commits while begin waits to take over', async () => {
      await stores[0]?.begin('timeline-takeover', 'fp', 20, 60_000)
      await sleep(40)
      const racer = await newClient()
      try {
        await racer.query('BEGIN')
        await racer.query(
          `UPDATE ${table} SET token = 'racer', attempt = attempt + 1, lease_until = $2 WHERE id = $1`,
          ['timeline-takeover', Date.now() + 30_000],
        )
        const begun = stores[0]?.begin('timeline-takeover', 'fp', 30_000, 60_000)
        await blockedBy(admin, await backendPid(racer))
        await racer.query('COMMIT')
        expect(await begun).toMatchObject({ outcome: 'in_progress', attempt: 2 })
        expect((await stores[0]?.get('timeline-takeover'))?.token).toBe('racer')
      } finally {
        await racer.end()
      }
    })
  })
}
