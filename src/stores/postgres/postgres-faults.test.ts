import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  backendPid,
  blockedBy,
  isolatedStore,
  newClient,
  newPool,
} from '../../../test/support/stores/postgres/postgres.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { recordId } from '../../core/key.js'
import { StoreUnavailableError } from '../../errors.js'
import { fromPg } from '../../sql/pg/pg-database.js'
import { PostgresStore } from './postgres-store.js'

describe('PostgresStore when the server cannot be reached', () => {
  const unreachable = () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'postgres', database: 'test' })
    pool.on('error', () => {})
    return pool
  }

  it('rejects with a StoreUnavailableError naming host and port', async () => {
    const pool = unreachable()
    const store = new PostgresStore({ client: pool })
    try {
      for (const attempt of [store.ensureSchema(), store.begin('k', 'fp', 1000, 5000), store.get('k')]) {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as Error).message).toMatch(/^PostgreSQL at 127\.0\.0\.1:1 is unreachable: .*ECONNREFUSED/)
        expect((error as StoreUnavailableError).cause).toMatchObject({ code: 'ECONNREFUSED' })
      }
    } finally {
      await pool.end()
    }
  })

  it('fails a run closed with STORE_UNAVAILABLE, without running the function', async () => {
    const store = new PostgresStore({ client: unreachable })
    const idem = new Idempotency({ store })
    let ran = false
    const error = await idem
      .run({ key: 'k' }, () => {
        ran = true
      })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' })
    expect((error as Error).message).toContain('PostgreSQL at 127.0.0.1:1 is unreachable')
    expect(ran).toBe(false)
    await store.close()
  })

  it('names the server from a connection string', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test' })
    pool.on('error', () => {})
    await expect(new PostgresStore({ client: pool }).begin('k', 'fp', 1000, 5000)).rejects.toThrow(
      /PostgreSQL at 127\.0\.0\.1:1 is unreachable/,
    )
    await pool.end()
  })

  it('calls a factory on first use, retries a failing one, and ends the pool it made on close', async () => {
    let calls = 0
    let ended = 0
    const store = new PostgresStore({
      client: () => {
        calls++
        if (calls === 1) throw new Error('no config yet')
        return { query: async () => ({ rows: [], rowCount: 0 }), end: async () => void ended++ }
      },
    })
    expect(calls).toBe(0)
    await expect(store.get('k')).rejects.toThrow(StoreUnavailableError)
    expect(await store.get('k')).toBeNull()
    expect(await store.sweep(10)).toBe(0)
    expect(calls).toBe(2)
    await store.close()
    expect(ended).toBe(1)
    await expect(store.get('k')).rejects.toThrow(/closed/)
  })
})

if (await requireService('PostgreSQL', 5432)) {
  describe('PostgresStore when the server fails mid-operation', () => {
    const admin = newPool(4)
    afterAll(() => admin.end())

    it('rejects a begin whose backend is terminated, leaves no record, and a retry executes', async () => {
      const pool = newPool(2)
      const { store, schema, drop } = await isolatedStore(pool)
      const racer = await newClient()
      try {
        const idem = new Idempotency({ store, scope: 'faults' })
        const id = recordId('faults', 'order-7')
        // A test transaction holds an uncommitted row for the same id: the begin waits on it.
        await racer.query('BEGIN')
        await racer.query(
          `INSERT INTO "${schema}".idem_records VALUES ($1, 'in_progress', 'fp', 'racer', 0, 1, NULL, 0, 0, 4102444800000)`,
          [id],
        )
        let ran = 0
        const work = () => {
          ran++
          return { paid: true }
        }
        const running = idem.run({ key: 'order-7', payload: { amount: 5 } }, work).catch((e: unknown) => e)
        const victim = await blockedBy(admin, await backendPid(racer))
        await admin.query('SELECT pg_terminate_backend($1)', [victim])
        const error = (await running) as StoreUnavailableError
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect(error.code).toBe('STORE_UNAVAILABLE')
        expect((error.cause as Error).message).toMatch(
          /^PostgreSQL at 127\.0\.0\.1:5432 lost the connection during begin/,
        )
        expect(ran).toBe(0)

        await racer.query('ROLLBACK')
        expect(await store.get(id)).toBeNull()
        expect((await admin.query(`SELECT count(*)::int AS n FROM "${schema}".idem_records`)).rows[0].n).toBe(0)
        expect(await idem.run({ key: 'order-7', payload: { amount: 5 } }, work)).toEqual({
          status: 'executed',
          value: { paid: true },
        })
        expect(await idem.run({ key: 'order-7', payload: { amount: 5 } }, work)).toMatchObject({ status: 'replayed' })
        expect(ran).toBe(1)
      } finally {
        await racer.end()
        await drop()
        await pool.end()
      }
    })

    it('rolls back every claim of a batch whose backend dies half-way', async () => {
      const pool = newPool(2)
      const { store, schema, drop } = await isolatedStore(pool)
      const racer = await newClient()
      try {
        await racer.query('BEGIN')
        await racer.query(
          `INSERT INTO "${schema}".idem_records VALUES ('b-blocked', 'in_progress', 'fp', 'racer', 0, 1, NULL, 0, 0, 4102444800000)`,
        )
        // Claimed in id order: a-free is inserted first, then the batch waits on b-blocked.
        const batch = store
          .beginMany(
            [
              { id: 'b-blocked', fingerprint: 'fp' },
              { id: 'a-free', fingerprint: 'fp' },
            ],
            30_000,
            60_000,
          )
          .catch((e: unknown) => e)
        const victim = await blockedBy(admin, await backendPid(racer))
        const { rows: locks } = await admin.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND locktype = 'transactionid' AND granted`,
          [victim],
        )
        expect(locks[0].n).toBeGreaterThan(0) // the batch has written (holds its own transaction id)
        await admin.query('SELECT pg_terminate_backend($1)', [victim])
        expect(await batch).toBeInstanceOf(StoreUnavailableError)
        await racer.query('ROLLBACK')
        expect((await admin.query(`SELECT id FROM "${schema}".idem_records`)).rows).toEqual([])
        const again = await store.beginMany(
          [
            { id: 'b-blocked', fingerprint: 'fp' },
            { id: 'a-free', fingerprint: 'fp' },
          ],
          30_000,
          60_000,
        )
        expect(again.map((r) => r.outcome)).toEqual(['acquired', 'acquired'])
      } finally {
        await racer.end()
        await drop()
        await pool.end()
      }
    })

    it('rejects every operation on a Client whose backend was terminated, naming the server', async () => {
      const client = await newClient()
      const { drop, schema } = await isolatedStore(admin)
      const store = new PostgresStore({ client: client, schema })
      try {
        await admin.query('SELECT pg_terminate_backend($1)', [await backendPid(client)])
        await expect(store.begin('k', 'fp', 1000, 5000)).rejects.toThrow(
          /^PostgreSQL at 127\.0\.0\.1:5432 lost the connection during begin/,
        )
        await expect(store.get('k')).rejects.toThrow(StoreUnavailableError)
      } finally {
        await client.end().catch(() => {})
        await drop()
      }
    })

    it('survives a transaction whose connection is reset: it rejects, the process goes on, the pool recovers', async () => {
      const pool = newPool(2)
      const { store, drop } = await isolatedStore(pool)
      try {
        const idem = new Idempotency({ store, scope: 'faults' })
        // Without a listener on the checked-out client, pg's 'error' event for the reset would be
        // unhandled: the test process would die (vitest fails the run on it).
        const error = await idem
          .transaction(fromPg<pg.PoolClient>(pool), { key: 'reset-1' }, async (tx) => {
            const { rows } = await tx.query('SELECT pg_backend_pid() AS pid')
            await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
            await tx.query('SELECT 1')
          })
          .catch((e: unknown) => e)
        expect(error).toBeInstanceOf(Error)
        await new Promise((resolve) => setTimeout(resolve, 50))
        expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
        const retried = await idem.transaction(fromPg(pool), { key: 'reset-1' }, async () => 'ran')
        expect(retried).toMatchObject({ status: 'executed', value: 'ran' })
      } finally {
        await drop()
        await pool.end()
      }
    })

    it('reports a missing schema as a store failure with its SQLSTATE', async () => {
      const store = new PostgresStore({ client: admin, schema: 'idem_pg_never_created' })
      await expect(store.begin('k', 'fp', 1000, 5000)).rejects.toThrow(
        /^PostgreSQL at 127\.0\.0\.1:5432 failed during begin: .* \(3F000\)$/,
      )
    })

    it('rejects every operation once closed, and leaves a pool it was given open', async () => {
      const { store, drop } = await isolatedStore(admin)
      await store.close()
      await expect(store.begin('k', 'fp', 1000, 5000)).rejects.toThrow(StoreUnavailableError)
      await expect(store.beginMany([{ id: 'k', fingerprint: 'fp' }], 1000, 5000)).rejects.toThrow(/closed/)
      await expect(store.completeMany([], 5000)).rejects.toThrow(/closed/)
      await expect(store.sweep(1)).rejects.toThrow(/closed/)
      await expect(store.ensureSchema()).rejects.toThrow(/closed/)
      expect((await admin.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
      await drop()
    })
  })
}
