import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from '../../../test/services.js'
import { isolatedStore, newPool, sleep } from '../../../test/support/stores/postgres/postgres.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import type { PgQueryable } from '../../drivers/pg.js'
import { describeStoreConformance } from '../../testing/index.js'
import { PostgresStore } from './postgres-store.js'

const LEASE_MS = 300
const TTL_MS = 1300

if (await requireService('PostgreSQL', 5432)) {
  const pool = newPool()
  afterAll(() => pool.end())

  describeStoreConformance(
    {
      name: 'PostgresStore',
      leaseMs: LEASE_MS,
      ttlMs: TTL_MS,
      create: async () => {
        const { store, drop } = await isolatedStore(pool)
        return {
          store,
          // The server's clock cannot be moved: wait it out, with a margin for the round trip.
          advance: (ms) => sleep(ms + 25),
          cleanup: async () => {
            await store.close()
            await drop()
          },
        }
      },
    },
    { describe, it },
  )

  describe('PostgresStore', () => {
    it('runs a function once through Idempotency.run, then replays its result', async () => {
      const { store, drop } = await isolatedStore(pool)
      try {
        const idem = new Idempotency({ store, scope: 'billing' })
        let calls = 0
        const extend = () => {
          calls++
          return { extendedUntil: '2027-11-21' }
        }
        const first = await idem.run({ key: 'order-42:pay', payload: { years: 1 } }, extend)
        const second = await idem.run({ key: 'order-42:pay', payload: { years: 1 } }, extend)
        expect(first).toEqual({ status: 'executed', value: { extendedUntil: '2027-11-21' } })
        expect(second).toEqual({ status: 'replayed', value: { extendedUntil: '2027-11-21' } })
        expect(calls).toBe(1)
      } finally {
        await drop()
      }
    })

    it('sends every operation, batches included, as one query', async () => {
      const { store: setup, schema, drop } = await isolatedStore(pool)
      await setup.close()
      const counted: string[] = []
      const counting: PgQueryable = {
        query: (text, values) => {
          counted.push(text)
          return pool.query(text, values)
        },
      }
      const store = new PostgresStore({ client: counting, schema })
      // A store's first complete asks once whether the complete function exists: done before counting.
      const warm = await store.begin('warm-up', 'fp', 1000, 5000)
      if (warm.outcome === 'acquired') await store.complete('warm-up', warm.token, '"w"', 5000)
      const calls = async (run: () => Promise<unknown>) => {
        counted.length = 0
        await run()
        return counted.length
      }
      try {
        let token = ''
        expect(
          await calls(async () => {
            const begun = await store.begin('one', 'fp', 1000, 5000)
            token = begun.outcome === 'acquired' ? begun.token : ''
          }),
        ).toBe(1)
        expect(await calls(() => store.begin('one', 'fp', 1000, 5000))).toBe(1)
        expect(await calls(() => store.extend('one', token, 1000))).toBe(1)
        expect(await calls(() => store.complete('one', token, '"r"', 5000))).toBe(1)
        const items = Array.from({ length: 20 }, (_, i) => ({ id: `many-${i}`, fingerprint: 'fp' }))
        let begun: Awaited<ReturnType<typeof store.beginMany>> = []
        expect(
          await calls(async () => {
            begun = await store.beginMany(items, 1000, 5000)
          }),
        ).toBe(1)
        const completions = begun.map((b, i) => ({
          id: `many-${i}`,
          token: b.outcome === 'acquired' ? b.token : '',
          result: String(i),
        }))
        let outcomes: string[] = []
        expect(
          await calls(async () => {
            outcomes = await store.completeMany(completions, 5000)
          }),
        ).toBe(1)
        expect(outcomes).toEqual(items.map(() => 'completed'))
        expect(await calls(() => store.sweep(100))).toBe(1)
        expect(await calls(() => store.get('one'))).toBe(1)
        expect(await calls(() => store.delete('one'))).toBe(1)
      } finally {
        await drop()
      }
    })

    it('answers duplicates without writing: no new row version, no row lock', async () => {
      const { store, schema, drop } = await isolatedStore(pool)
      const version = async (id: string) =>
        (
          await pool.query(`SELECT xmin::text, xmax::text, ctid::text FROM "${schema}".idem_records WHERE id = $1`, [
            id,
          ])
        ).rows[0]
      try {
        const running = await store.begin('running', 'fp', 30_000, 60_000)
        const done = await store.begin('done', 'fp', 30_000, 60_000)
        expect(running.outcome).toBe('acquired')
        if (done.outcome !== 'acquired') throw new Error('expected acquired')
        await store.complete('done', done.token, '"ok"', 60_000)
        const before = { running: await version('running'), done: await version('done') }
        for (let i = 0; i < 5; i++) {
          expect((await store.begin('running', 'fp', 30_000, 60_000)).outcome).toBe('in_progress')
          expect((await store.begin('running', 'other', 30_000, 60_000)).outcome).toBe('mismatch')
          expect((await store.begin('done', 'fp', 30_000, 60_000)).outcome).toBe('completed')
          expect((await store.begin('done', 'other', 30_000, 60_000)).outcome).toBe('mismatch')
        }
        await store.beginMany(
          [
            { id: 'running', fingerprint: 'fp' },
            { id: 'done', fingerprint: 'fp' },
          ],
          30_000,
          60_000,
        )
        expect({ running: await version('running'), done: await version('done') }).toEqual(before)
        expect(before.done.xmax).toBe('0')
      } finally {
        await drop()
      }
    })

    it('judges result size in UTF-8 bytes against maxResultBytes, before sending', async () => {
      const { store, drop } = await isolatedStore(pool, { maxResultBytes: 10 })
      try {
        const begun = await store.begin('small', 'fp', 30_000, 60_000)
        if (begun.outcome !== 'acquired') throw new Error('expected acquired')
        await expect(store.complete('small', begun.token, 'ééééé!', 60_000)).rejects.toMatchObject({
          code: 'RESULT_TOO_LARGE',
          bytes: 11,
          limit: 10,
        })
        expect(await store.completeMany([{ id: 'small', token: begun.token, result: 'x'.repeat(11) }], 60_000)).toEqual(
          ['too_large'],
        )
        expect(await store.completeMany([{ id: 'small', token: 'stale', result: 'x'.repeat(11) }], 60_000)).toEqual([
          'lease_lost',
        ])
        await store.complete('small', begun.token, 'ééééé', 60_000)
        expect((await store.get('small'))?.result).toBe('ééééé')
      } finally {
        await drop()
      }
    })

    it('treats duplicate ids in one batch as sequential calls', async () => {
      const { store, drop } = await isolatedStore(pool)
      try {
        const begun = await store.beginMany(
          [
            { id: 'dup', fingerprint: 'fp' },
            { id: 'dup', fingerprint: 'other' },
            { id: 'dup', fingerprint: 'fp' },
          ],
          30_000,
          60_000,
        )
        expect(begun.map((b) => b.outcome)).toEqual(['acquired', 'mismatch', 'in_progress'])
        const token = begun[0]?.outcome === 'acquired' ? begun[0].token : ''
        const outcomes = await store.completeMany(
          [
            { id: 'dup', token, result: 'x'.repeat(2 * 1024 * 1024) },
            { id: 'dup', token: 'stale', result: '"no"' },
            { id: 'dup', token, result: '"first"' },
            { id: 'dup', token, result: '"second"' },
          ],
          60_000,
        )
        expect(outcomes).toEqual(['too_large', 'lease_lost', 'completed', 'lease_lost'])
        expect((await store.get('dup'))?.result).toBe('"first"')
      } finally {
        await drop()
      }
    })
  })
}
