import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../../test/services.js'
import { MYSQL_URL } from '../../../test/support/stores/mysql/mysql.test-helper.js'
import { procedureNames } from './mysql-procedures.js'
import { mysqlDropSchema, mysqlSchema } from './mysql-schema.js'
import { MysqlStore } from './mysql-store.js'

describe('mysqlSchema', () => {
  it('accepts table names that leave room for the procedure names, and nothing else', () => {
    expect(mysqlSchema({ table: 'a'.repeat(47) })).toHaveLength(9)
    for (const table of ['a'.repeat(48), 'bad-name', '1abc', 'x`; DROP TABLE y', '']) {
      expect(() => mysqlSchema({ table }), table).toThrow(TypeError)
      expect(() => new MysqlStore({ client: { query: async () => [[], []] }, table }), table).toThrow(TypeError)
    }
  })
})

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe('MysqlStore schema on MariaDB', () => {
    let db: mysql.Connection
    const tables: string[] = []
    const fresh = () => {
      const table = isolatedName('idem_schema')
      tables.push(table)
      return table
    }
    const objects = async (table: string) => {
      const [routines] = await db.query<mysql.RowDataPacket[]>(
        'SELECT ROUTINE_NAME AS name FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME LIKE ? ORDER BY name',
        [`${table}\\_%`],
      )
      const [found] = await db.query<mysql.RowDataPacket[]>(
        'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [table],
      )
      return { table: found.length === 1, routines: routines.map((r) => r.name as string) }
    }

    beforeAll(async () => {
      db = await mysql.createConnection(MYSQL_URL)
    })
    afterAll(async () => {
      for (const table of tables) for (const statement of mysqlDropSchema({ table })) await db.query(statement)
      await db.end()
    })

    it('ensureSchema creates the table and its procedures, and is idempotent and safe to race', async () => {
      const table = fresh()
      const pools = [mysql.createPool(MYSQL_URL), mysql.createPool(MYSQL_URL), mysql.createPool(MYSQL_URL)]
      try {
        const stores = pools.map((client) => new MysqlStore({ client, table }))
        await stores[0]?.ensureSchema()
        await stores[0]?.ensureSchema()
        await Promise.all(stores.map((store) => store.ensureSchema()))
        expect(await objects(table)).toEqual({ table: true, routines: Object.values(procedureNames(table)).sort() })
        const begun = await stores[1]?.begin('k', 'fp', 1000, 5000)
        expect(begun?.outcome).toBe('acquired')
      } finally {
        await Promise.all(pools.map((pool) => pool.end()))
      }
    })

    it('the exported DDL, run statement by statement, makes a working store', async () => {
      const table = fresh()
      for (const statement of mysqlSchema({ table })) await db.query(statement)
      const store = new MysqlStore({ client: db, table })
      const begun = await store.begin('ddl', 'fp', 1000, 5000)
      if (begun.outcome !== 'acquired') throw new Error(`expected acquired, got ${begun.outcome}`)
      await store.complete('ddl', begun.token, '"done"', 5000)
      expect(await store.begin('ddl', 'fp', 1000, 5000)).toMatchObject({ outcome: 'completed', result: '"done"' })
      for (const statement of mysqlDropSchema({ table })) await db.query(statement)
      expect(await objects(table)).toEqual({ table: false, routines: [] })
    })

    it('finds expired records for sweep through the expires_at index', async () => {
      const table = fresh()
      const store = new MysqlStore({ client: db, table })
      await store.ensureSchema()
      await store.beginMany(
        Array.from({ length: 300 }, (_, i) => ({ id: `sweep-${i}`, fingerprint: 'fp' })),
        1000,
        5000,
      )
      // The sweep procedure's cursor query, with a concrete instant.
      const [plan] = await db.query<mysql.RowDataPacket[]>(
        `EXPLAIN SELECT id FROM \`${table}\` WHERE expires_at <= ? ORDER BY expires_at LIMIT 10`,
        [Date.now() - 60_000],
      )
      expect(plan[0]?.key).toBe(`${table}_expires_at`)
    })
  })
}
