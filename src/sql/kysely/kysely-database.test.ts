// Transaction mode through Kysely: the shared suite on each SQL database, the executor's handling
// of values, and what fromKysely makes of plugins and of dialects it cannot recognise.

import Database from 'better-sqlite3'
import {
  CamelCasePlugin,
  DummyDriver,
  Kysely,
  MssqlQueryCompiler,
  SqliteAdapter,
  SqliteDialect,
  SqliteIntrospector,
} from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { describeExecutor, describeUndefinedThrow, ormRig } from '../../../test/support/sql/orm-rigs.test-helper.js'
import { describeTransactionMode } from '../../../test/support/transaction/transaction-suite.test-helper.js'
import type { SqlDialect } from '../core/executor.js'
import { fromKysely } from './kysely-database.js'

describeTransactionMode('SQLite (Kysely, better-sqlite3)', () => ormRig('Kysely', 'sqlite'))
describeExecutor('Kysely', 'sqlite')
describeUndefinedThrow('Kysely')
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeTransactionMode('PostgreSQL (Kysely, pg)', () => ormRig('Kysely', 'postgres'))
  describeExecutor('Kysely', 'postgres')
}
if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describeTransactionMode('MariaDB (Kysely, mysql2)', () => ormRig('Kysely', 'mysql'))
  describeExecutor('Kysely', 'mysql')
}

describe('fromKysely', () => {
  let camel: Kysely<Record<string, never>>
  beforeAll(() => {
    const database = new Database(':memory:')
    camel = new Kysely({ dialect: new SqliteDialect({ database }), plugins: [new CamelCasePlugin()] })
  })
  afterAll(() => camel?.destroy())

  it('gives Idem its rows as the database names them, past a plugin that renames columns', async () => {
    const { rows } = await fromKysely(camel).transaction((_tx, sql) =>
      sql.execute('SELECT 1 AS lease_until, 2 AS expires_at', []),
    )
    expect(rows).toEqual([{ lease_until: 1, expires_at: 2 }])
  })

  it('leaves the plugins on the transaction handed to the function', async () => {
    const rows = await fromKysely(camel).transaction(async (tx) =>
      tx.selectNoFrom((eb) => eb.val(1).as('lease_until')).execute(),
    )
    expect(rows).toEqual([{ leaseUntil: 1 }])
  })

  it('reads the dialect from the SQL the instance compiles', () => {
    expect(fromKysely(camel).dialect).toBe('sqlite')
  })

  it('asks for the dialect when the compiled SQL does not tell it, and takes it when given', () => {
    const mssqlLike = new Kysely<Record<string, never>>({
      dialect: {
        createAdapter: () => new SqliteAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (db) => new SqliteIntrospector(db),
        createQueryCompiler: () => new MssqlQueryCompiler(),
      },
    })
    expect(() => fromKysely(mssqlLike)).toThrow(/pass it as the second argument/)
    expect(fromKysely(mssqlLike, 'postgres').dialect).toBe('postgres')
    expect(() => fromKysely(mssqlLike, 'oracle' as SqlDialect)).toThrow(TypeError)
  })

  it('refuses what is not a Kysely instance with a TypeError', () => {
    expect(() => fromKysely({} as Kysely<Record<string, never>>)).toThrow(TypeError)
    expect(() => fromKysely(null as unknown as Kysely<Record<string, never>>)).toThrow(TypeError)
  })
})
