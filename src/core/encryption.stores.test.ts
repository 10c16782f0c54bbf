// The encryption suite on the real servers: what Redis and PostgreSQL hold is read back raw, so
// the plaintext is looked for where an attacker with a dump would look.

import { Redis } from 'ioredis'
import pg from 'pg'
import { describe, expect, it, vi } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { describeEncryption, ROTATED, SECRET } from '../../test/support/core/encryption-suite.test-helper.js'
import { postgresRig } from '../../test/support/transaction/transaction-rigs.test-helper.js'
import { PostgresStore } from '../stores/postgres/postgres-store.js'
import { RedisStore } from '../stores/redis/redis-store.js'

/** Rows as JSON, with bytea columns (the result) as the UTF-8 text a dump would show. */
function asText(rows: unknown): string {
  return JSON.stringify(rows, (_key, value: unknown) => {
    const buffer = value as { type?: unknown; data?: unknown }
    return buffer?.type === 'Buffer' && Array.isArray(buffer.data) ? Buffer.from(buffer.data).toString('utf8') : value
  })
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describeEncryption('RedisStore', async () => {
    const client = new Redis({ host: '127.0.0.1', port: SERVICES.Redis.port, maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    const prefix = `${isolatedName('idem_enc')}:`
    const store = new RedisStore({ client, prefix })
    const keys = async () => {
      const found: string[] = []
      let cursor = '0'
      do {
        const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        cursor = next
        found.push(...batch)
      } while (cursor !== '0')
      return found
    }
    return {
      store,
      // Every key and every value of every field, whatever type each key is.
      dump: async () => {
        const parts: string[] = []
        for (const key of await keys()) {
          const type = await client.type(key)
          parts.push(key, type)
          if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)))
          else if (type === 'string') parts.push(String(await client.get(key)))
          else parts.push(JSON.stringify(await client.call('DUMP', key)))
        }
        expect(parts.length).toBeGreaterThan(0)
        return parts.join('\n')
      },
      cleanup: async () => {
        const found = await keys()
        if (found.length > 0) await client.del(...found)
        await store.close()
        await client.quit()
      },
    }
  })
}

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeEncryption('PostgresStore', async () => {
    const pool = new pg.Pool({ connectionString: SERVICES.PostgreSQL.url, max: 5 })
    pool.on('error', () => {})
    const schema = isolatedName('idem_enc')
    const store = new PostgresStore({ client: pool, schema })
    await store.ensureSchema()
    return {
      store,
      dump: async () => {
        const { rows } = await pool.query(`SELECT * FROM ${store.names.qualifiedTable}`)
        expect(rows.length).toBeGreaterThan(0)
        return asText(rows)
      },
      cleanup: async () => {
        await store.close()
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      },
    }
  })

  describe('encryption in transaction mode on PostgreSQL', () => {
    it('writes the sealed result in the fused claim/complete statements, and replays it', async () => {
      const rig = await postgresRig()
      try {
        const idem = rig.idem({ encryption: ROTATED })
        const fn = vi.fn(async (_tx: unknown, ctx: { sql: Parameters<typeof rig.addEffect>[0] }) => {
          await rig.addEffect(ctx.sql, 'pay-1')
          return { card: SECRET }
        })
        expect((await idem.transaction(rig.db, { key: 'pay-1' }, fn)).status).toBe('executed')
        expect(await idem.transaction(rig.db, { key: 'pay-1' }, fn)).toEqual({
          status: 'replayed',
          value: { card: SECRET },
        })
        expect(fn).toHaveBeenCalledTimes(1)
        expect(await rig.effect('pay-1')).toBe(1)
        const store = rig.store as PostgresStore
        const raw = await rig.db.transaction((_tx, sql) =>
          sql.execute(`SELECT * FROM ${store.names.qualifiedTable}`, []),
        )
        const text = asText(raw)
        expect(text).toContain('e1:k2:')
        expect(text).not.toContain(SECRET)
      } finally {
        await rig.cleanup()
      }
    })

    it('seals the outcome a new key is settled with in its claim, for a function that returns nothing', async () => {
      const rig = await postgresRig()
      try {
        const idem = rig.idem({ encryption: ROTATED })
        const fn = vi.fn(async (_tx: unknown, ctx: { sql: Parameters<typeof rig.addEffect>[0] }) => {
          await rig.addEffect(ctx.sql, 'void-1')
        })
        expect(await idem.transaction(rig.db, { key: 'void-1' }, fn)).toEqual({ status: 'executed', value: undefined })
        expect(await idem.transaction(rig.db, { key: 'void-1' }, fn)).toEqual({ status: 'replayed', value: undefined })
        expect(fn).toHaveBeenCalledTimes(1)
        const record = await rig.store.get(idem.recordId('void-1'))
        expect(record).toMatchObject({ state: 'completed', token: null })
        expect(record?.result).toMatch(/^e1:k2:/)
      } finally {
        await rig.cleanup()
      }
    })
  })
}
