import mysql from 'mysql2/promise'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import {
  createTestStore,
  dropSchema,
  MYSQL_URL,
  type TestStore,
} from '../../../test/support/stores/mysql/mysql.test-helper.js'
import type { BeginResult } from '../../contract/types.js'
import { Idempotency } from '../../core/idempotency.js'
import { StoreUnavailableError } from '../../errors.js'
import { MysqlStore } from './mysql-store.js'

const L = 1000
const T = 5000

function token(begun: BeginResult): string {
  if (begun.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun.outcome}`)
  return begun.token
}

describe('MysqlStore against an unreachable server', () => {
  it('names host and port in STORE_UNAVAILABLE when a pool cannot connect', async () => {
    const pool = mysql.createPool({ host: '127.0.0.1', port: 1, user: 'root', connectTimeout: 2000 })
    const store = new MysqlStore({ client: pool })
    try {
      for (const attempt of [store.begin('k', 'fp', L, T), store.ensureSchema(), store.get('k')]) {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as StoreUnavailableError).code).toBe('STORE_UNAVAILABLE')
        expect((error as Error).message).toMatch(/^MySQL at 127\.0\.0\.1:1 is unreachable: .*ECONNREFUSED/)
        expect(((error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED')
      }
    } finally {
      await pool.end()
    }
  })

  it('names host and port when a lazy factory cannot connect, and tries again on the next call', async () => {
    const factory = vi.fn(() => mysql.createConnection({ host: '127.0.0.1', port: 1, user: 'root' }))
    const store = new MysqlStore({ client: factory })
    await expect(store.begin('k', 'fp', L, T)).rejects.toThrow(/^MySQL at 127\.0\.0\.1:1 is unreachable/)
    await expect(store.complete('k', 'token', '1', T)).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(factory).toHaveBeenCalledTimes(2)
    await store.close()
  })
})

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe('MysqlStore on MariaDB', () => {
    const open: TestStore[] = []
    const setup = async (...args: Parameters<typeof createTestStore>) => {
      const test = await createTestStore(...args)
      open.push(test)
      return test
    }
    afterEach(async () => {
      for (const test of open.splice(0)) await test.cleanup()
    })

    it('keeps ids case-sensitive and byte-exact: Key ≠ key, k ≠ "k "', async () => {
      const { store } = await setup()
      const ids = ['Key', 'key', 'KEY', 'k', 'k ', 'k  ', ' k']
      const begun = await Promise.all(ids.map((id) => store.begin(id, 'fp', L, T)))
      expect(begun.map((b) => b.outcome)).toEqual(ids.map(() => 'acquired'))
      for (const [i, id] of ids.entries())
        await store.complete(id, token(begun[i] as BeginResult), JSON.stringify(id), T)
      for (const id of ids) {
        expect(await store.begin(id, 'fp', L, T)).toMatchObject({ outcome: 'completed', result: JSON.stringify(id) })
        expect((await store.get(id))?.id).toBe(id)
      }
      expect(await store.get('kEy')).toBeNull()
    })

    it('sends every operation as one statement (server-side count, not just client calls)', async () => {
      const client = await mysql.createConnection(MYSQL_URL)
      const table = isolatedName('idem_rt')
      const store = new MysqlStore({ client, table })
      try {
        await store.ensureSchema()
        // "Questions" counts the statements a client sent, not those run inside procedures;
        // the SHOW that reads it counts itself once.
        const questions = async () => {
          const [rows] = await client.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Questions'")
          return Number(rows[0]?.Value)
        }
        const statementsOf = async (operation: () => Promise<unknown>) => {
          const before = await questions()
          await operation()
          return (await questions()) - before - 1
        }
        const items = Array.from({ length: 20 }, (_, i) => ({ id: `batch-${i % 15}`, fingerprint: 'fp' }))
        let batch: BeginResult[] = []
        expect(
          await statementsOf(async () => {
            batch = await store.beginMany(items, L, T)
          }),
        ).toBe(1)
        expect(batch.filter((b) => b.outcome === 'acquired')).toHaveLength(15)
        const completions = batch.flatMap((b, i) =>
          b.outcome === 'acquired' ? [{ id: items[i]?.id as string, token: b.token, result: `"${i}"` }] : [],
        )
        expect(await statementsOf(() => store.completeMany(completions, T))).toBe(1)
        const begun = await store.begin('single', 'fp', L, T)
        expect(await statementsOf(() => store.begin('single', 'fp', L, T))).toBe(1)
        expect(await statementsOf(() => store.extend('single', token(begun), L))).toBe(1)
        expect(await statementsOf(() => store.complete('single', token(begun), '1', T))).toBe(1)
        expect(await statementsOf(() => store.get('single'))).toBe(1)
        expect(await statementsOf(() => store.delete('single'))).toBe(1)
        expect(await statementsOf(() => store.sweep(100))).toBe(1)
        const again = await store.begin('single', 'fp', L, T)
        expect(await statementsOf(() => store.release('single', token(again)))).toBe(1)
      } finally {
        await dropSchema(client, table)
        await client.end()
      }
    })

    it('writes nothing for duplicates of a completed, in-progress or mismatched record', async () => {
      const { store } = await setup()
      const begun = await store.begin('dup', 'fp', L, T)
      const running = await store.get('dup')
      await new Promise((resolve) => setTimeout(resolve, 5))
      expect((await store.begin('dup', 'fp', L, T)).outcome).toBe('in_progress')
      expect((await store.begin('dup', 'other', L, T)).outcome).toBe('mismatch')
      expect(await store.get('dup')).toEqual(running)
      await store.complete('dup', token(begun), '"r"', T)
      const done = await store.get('dup')
      await new Promise((resolve) => setTimeout(resolve, 5))
      expect((await store.begin('dup', 'fp', L, T)).outcome).toBe('completed')
      expect((await store.begin('dup', 'other', L, T)).outcome).toBe('mismatch')
      expect(await store.get('dup')).toEqual(done)
    })

    for (const flags of [[], ['-FOUND_ROWS']]) {
      it(`counts an owner's extend, complete and release as matched ${flags.length ? 'without' : 'with'} CLIENT_FOUND_ROWS`, async () => {
        const pool = mysql.createPool({ uri: MYSQL_URL, flags, connectionLimit: 1 })
        const store = new MysqlStore({ client: pool, table: isolatedName('idem_rows') })
        try {
          await store.ensureSchema()
          const owner = token(await store.begin('x', 'fp', L, T))
          // Back to back on one connection: several of these land in the same millisecond,
          // where the new lease equals the old one.
          const deadlines = await Promise.all(Array.from({ length: 30 }, () => store.extend('x', owner, L)))
          expect(deadlines.every((d) => d > 0)).toBe(true)
          await expect(store.extend('x', 'not-the-owner', L)).rejects.toMatchObject({ code: 'LEASE_LOST' })
          await store.complete('x', owner, '1', T)
          await expect(store.complete('x', owner, '2', T)).rejects.toMatchObject({ code: 'LEASE_LOST' })
          const other = token(await store.begin('y', 'fp', L, T))
          await store.release('y', other)
          await expect(store.release('y', other)).rejects.toMatchObject({ code: 'LEASE_LOST' })
        } finally {
          await dropSchema(pool, store.table)
          await pool.end()
        }
      })
    }

    it('stores ids, fingerprints and results byte-identically whatever the connection charset', async () => {
      const pool = mysql.createPool({ uri: MYSQL_URL, charset: 'latin1' })
      const store = new MysqlStore({ client: pool, table: isolatedName('idem_cs') })
      try {
        await store.ensureSchema()
        const result = JSON.stringify({ card: '💳', text: 'é ü ß 漢字', nul: '\u0000', quote: '"\'\\' })
        const fingerprint = 'fingerprint-é-💳'
        const one = token(await store.begin('id-é', fingerprint, L, T))
        await store.complete('id-é', one, result, T)
        expect(await store.begin('id-é', fingerprint, L, T)).toMatchObject({ outcome: 'completed', result })
        expect(await store.begin('id-é', 'fingerprint-e-💳', L, T)).toMatchObject({ outcome: 'mismatch' })
        const [b] = await store.beginMany([{ id: 'many-💳', fingerprint }], L, T)
        expect(await store.completeMany([{ id: 'many-💳', token: token(b as BeginResult), result }], T)).toEqual([
          'completed',
        ])
        expect(await store.get('many-💳')).toMatchObject({ id: 'many-💳', fingerprint, result })
      } finally {
        await dropSchema(pool, store.table)
        await pool.end()
      }
    })

    it('keeps empty fingerprints and empty results apart from missing ones, single and batched', async () => {
      const { store } = await setup()
      const [a, b] = await store.beginMany(
        [
          { id: 'empty-a', fingerprint: '' },
          { id: 'empty-b', fingerprint: '' },
        ],
        L,
        T,
      )
      await store.complete('empty-a', token(a as BeginResult), '', T)
      expect(await store.completeMany([{ id: 'empty-b', token: token(b as BeginResult), result: '' }], T)).toEqual([
        'completed',
      ])
      for (const id of ['empty-a', 'empty-b']) {
        expect(await store.begin(id, '', L, T)).toMatchObject({ outcome: 'completed', result: '' })
        expect(await store.begin(id, 'x', L, T)).toEqual({ outcome: 'mismatch', state: 'completed' })
        expect(await store.get(id)).toMatchObject({ fingerprint: '', result: '', token: null })
      }
    })

    it('reads the server clock whatever the session time zone', async () => {
      const client = await mysql.createConnection(MYSQL_URL)
      const store = new MysqlStore({ client, table: isolatedName('idem_tz') })
      try {
        await store.ensureSchema()
        for (const zone of ['+09:00', '-07:00', '+00:00']) {
          await client.query('SET time_zone = ?', [zone])
          const before = Date.now()
          const begun = await store.begin(`tz${zone}`, 'fp', L, T)
          const after = Date.now()
          if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
          expect(begun.leaseUntil).toBeGreaterThanOrEqual(before + L - 50)
          expect(begun.leaseUntil).toBeLessThanOrEqual(after + L + 50)
        }
      } finally {
        await dropSchema(client, store.table)
        await client.end()
      }
    })

    it('accepts results up to a maxResultBytes above 1 MiB, in complete and completeMany', async () => {
      const limit = 3 * 1024 * 1024
      const { store } = await setup({ maxResultBytes: limit })
      const emoji = Math.floor((limit - 2) / 4)
      const big = `"${'💳'.repeat(emoji)}${'x'.repeat(limit - 2 - 4 * emoji)}"`
      expect(Buffer.byteLength(big)).toBe(limit)
      const a = token(await store.begin('big-a', 'fp', L, T))
      await store.complete('big-a', a, big, T)
      expect(await store.begin('big-a', 'fp', L, T)).toMatchObject({ outcome: 'completed', result: big })
      const b = token(await store.begin('big-b', 'fp', L, T))
      const c = token(await store.begin('big-c', 'fp', L, T))
      expect(
        await store.completeMany(
          [
            { id: 'big-b', token: b, result: big },
            { id: 'big-c', token: c, result: `${big} ` },
          ],
          T,
        ),
      ).toEqual(['completed', 'too_large'])
      expect((await store.get('big-b'))?.result).toBe(big)
      await expect(store.complete('big-c', c, `${big} `, T)).rejects.toMatchObject({ code: 'RESULT_TOO_LARGE' })
    })

    it('rejects ids over 1024 bytes and fingerprints over 64 KiB before sending anything', async () => {
      const { store } = await setup()
      await expect(store.begin('é'.repeat(600), 'fp', L, T)).rejects.toThrow(TypeError)
      await expect(store.begin('k', 'f'.repeat(65_536), L, T)).rejects.toThrow(TypeError)
      await expect(store.beginMany([{ id: 'é'.repeat(600), fingerprint: 'fp' }], L, T)).rejects.toThrow(TypeError)
      expect(await store.get('k')).toBeNull()
    })

    it('runs a claim again when InnoDB rolls it back to break a deadlock', async () => {
      const { store, table } = await setup()
      const other = await mysql.createConnection(MYSQL_URL)
      // True once the claim's takeover UPDATE is blocked inside the server.
      const waiting = async () => {
        const [rows] = await other.query<mysql.RowDataPacket[]>(
          "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE = 'Updating' AND INFO LIKE ?",
          [`UPDATE \`${table}\` SET token%`],
        )
        return Number(rows[0]?.n) > 0
      }
      try {
        await store.begin('dl', 'fp', 50, T)
        await new Promise((resolve) => setTimeout(resolve, 60)) // the lease lapses: the next begin takes over
        const expiresAt = (await store.get('dl'))?.expiresAt
        // Another transaction, heavier than a claim (so InnoDB picks the claim as the victim),
        // locks the row's expires_at index entry but not the row: the reverse of the store's order.
        await other.query('START TRANSACTION')
        for (let i = 0; i < 50; i++) {
          await other.query(
            `INSERT INTO ${table} (id, state, fingerprint, attempt, created_at, updated_at, expires_at) VALUES (?, 'completed', '', 1, 0, 0, 0)`,
            [`heavy-${i}`],
          )
        }
        await other.query(
          `SELECT id FROM ${table} FORCE INDEX (${table}_expires_at) WHERE expires_at = ? LOCK IN SHARE MODE`,
          [expiresAt],
        )
        // The takeover locks the row, then waits for the index entry...
        const claim = store.begin('dl', 'fp', 50, T)
        while (!(await waiting())) await new Promise((resolve) => setTimeout(resolve, 10))
        // ...and this closes the cycle. The claim is rolled back and runs again, now behind us.
        await other.query(`SELECT id FROM ${table} WHERE id = 'dl' LOCK IN SHARE MODE`)
        await other.query('ROLLBACK')
        expect(await claim).toMatchObject({ outcome: 'acquired', attempt: 2, recovered: true })
      } finally {
        await other.end()
      }
    })

    it('says to create the schema when the table is missing', async () => {
      const pool = mysql.createPool(MYSQL_URL)
      const store = new MysqlStore({ client: pool, table: isolatedName('idem_missing') })
      try {
        await expect(store.begin('k', 'fp', L, T)).rejects.toThrow(/ensureSchema\(\)/)
        await expect(store.get('k')).rejects.toThrow(/ensureSchema\(\)/)
      } finally {
        await pool.end()
      }
    })

    it('ends a client its factory created, and never one it was given', async () => {
      const made = mysql.createPool(MYSQL_URL)
      const end = vi.spyOn(made, 'end')
      const owned = new MysqlStore({ client: () => made, table: isolatedName('idem_own') })
      await owned.ensureSchema()
      await dropSchema(made, owned.table)
      await owned.close()
      expect(end).toHaveBeenCalledTimes(1)

      const given = mysql.createPool(MYSQL_URL)
      const notEnded = vi.spyOn(given, 'end')
      const borrowed = new MysqlStore({ client: given })
      await borrowed.close()
      await expect(borrowed.get('k')).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(notEnded).not.toHaveBeenCalled()
      await given.end()
    })

    it('runs a function once through Idempotency.run and replays it from another process', async () => {
      const { store, table } = await setup()
      const otherPool = mysql.createPool(MYSQL_URL)
      const other = new MysqlStore({ client: otherPool, table })
      const fn = vi.fn(async () => ({ extendedUntil: '2027-11-21', note: 'paid 💳' }))
      const first = await new Idempotency({ store, scope: 'billing' }).run(
        { key: 'order-42:pay', payload: { a: 1 } },
        fn,
      )
      const second = await new Idempotency({ store: other, scope: 'billing' }).run(
        { key: 'order-42:pay', payload: { a: 1 } },
        fn,
      )
      expect(first).toEqual({ status: 'executed', value: { extendedUntil: '2027-11-21', note: 'paid 💳' } })
      expect(second).toEqual({ status: 'replayed', value: first.value })
      expect(fn).toHaveBeenCalledTimes(1)
      await otherPool.end()
    })
  })
}
