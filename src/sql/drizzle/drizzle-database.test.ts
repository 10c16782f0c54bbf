// Transaction mode through Drizzle: the shared suite on each SQL database, the executor's handling
// of values and placeholders, and what fromDrizzle accepts as a database or a transaction.

import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import { describeExecutor, describeUndefinedThrow, ormRig } from '../../../test/support/sql/orm-rigs.test-helper.js'
import { describeTransactionMode } from '../../../test/support/transaction/transaction-suite.test-helper.js'
import { type DrizzleAsyncLike, fromDrizzle } from './drizzle-database.js'

describeTransactionMode('SQLite (Drizzle, better-sqlite3)', () => ormRig('Drizzle', 'sqlite'))
describeExecutor('Drizzle', 'sqlite')
describeUndefinedThrow('Drizzle')
if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describeTransactionMode('PostgreSQL (Drizzle, node-postgres)', () => ormRig('Drizzle', 'postgres'))
  describeExecutor('Drizzle', 'postgres')
}
if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describeTransactionMode('MariaDB (Drizzle, mysql2)', () => ormRig('Drizzle', 'mysql'))
  describeExecutor('Drizzle', 'mysql')
}

describe('fromDrizzle', () => {
  let connection: Database.Database
  let db: ReturnType<typeof drizzle>
  beforeAll(() => {
    connection = new Database(':memory:')
    db = drizzle(connection)
  })
  afterAll(() => connection?.close())

  it("reads the dialect from Drizzle's classes and checks a dialect given against it", () => {
    expect(fromDrizzle(db).dialect).toBe('sqlite')
    expect(fromDrizzle(db, 'sqlite').dialect).toBe('sqlite')
    expect(() => fromDrizzle(db as unknown as DrizzleAsyncLike<unknown>, 'postgres')).toThrow(TypeError)
  })

  it('refuses a synchronous SQLite transaction, which cannot wait for async work, with a TypeError', () => {
    let refused: unknown
    db.transaction((tx) => {
      try {
        fromDrizzle(tx as unknown as typeof db)
      } catch (error) {
        refused = error
      }
    })
    expect(refused).toBeInstanceOf(TypeError)
  })

  it('refuses what is not a Drizzle database with a TypeError', () => {
    expect(() => fromDrizzle({} as typeof db)).toThrow(TypeError)
    expect(() => fromDrizzle(connection as unknown as typeof db)).toThrow(TypeError)
  })
})
