// Transaction mode through Knex: the shared suite on each SQL database, the executor's handling of
// values and placeholders, and what fromKnex makes of result hooks and clients it cannot serve.

import type { Knex } from 'knex'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../../test/services.js'
import {
  describeExecutor,
  describeUndefinedThrow,
  driverRig,
  type Opened,
  openKnex,
  ormRig,
  sqliteFile,
} from '../../../test/support/sql/orm-rigs.test-helper.js'
import type { TransactionRig } from '../../../test/support/transaction/transaction-rigs.test-helper.js'
import { describeTransactionMode } from '../../../test/support/transaction/transaction-suite.test-helper.js'
import type { SqlDialect } from '../core/executor.js'
import { fromKnex, toKnexPostgres } from './knex-database.js'

const pgUp = await requireService('PostgreSQL', SERVICES.PostgreSQL.port)
const mariaUp = await requireService('MariaDB', SERVICES.MariaDB.port)

describeTransactionMode('SQLite (Knex, better-sqlite3)', () => ormRig('Knex', 'sqlite'))
describeExecutor('Knex', 'sqlite')
describeUndefinedThrow('Knex')
describePostProcessed('sqlite')
if (pgUp) {
  describeTransactionMode('PostgreSQL (Knex, pg)', () => ormRig('Knex', 'postgres'))
  describeExecutor('Knex', 'postgres')
  describePostProcessed('postgres')
}
if (mariaUp) {
  describeTransactionMode('MariaDB (Knex, mysql2)', () => ormRig('Knex', 'mysql'))
  describeExecutor('Knex', 'mysql')
  describePostProcessed('mysql')
}

/** A postProcessResponse hook must not reach Idem's own statements (a camelCase mapper would). */
function describePostProcessed(dialect: SqlDialect): void {
  describe(`fromKnex on ${dialect} with a postProcessResponse hook`, () => {
    let rig: TransactionRig
    let opened: Opened<Knex>
    beforeAll(async () => {
      rig = await driverRig(dialect)
      opened = openKnex(dialect, dialect === 'sqlite' ? sqliteFile(rig) : undefined, {
        postProcessResponse: () => ({ rewritten: true }),
      })
    })
    afterAll(async () => {
      await opened?.close()
      await rig?.cleanup()
    })

    it("runs and replays with Idem's results untouched, while the function's own queries get the hook", async () => {
      const idem = rig.idem()
      const seen: unknown[] = []
      const work = async (tx: Knex.Transaction, ctx: { sql: Parameters<TransactionRig['addEffect']>[0] }) => {
        seen.push(await tx.raw('SELECT 1 AS one'))
        await rig.addEffect(ctx.sql, 'hooked-1')
        return 'done'
      }
      const db = fromKnex(opened.instance)
      expect(await idem.transaction(db, { key: 'hooked-1', payload: 1 }, work)).toEqual({
        status: 'executed',
        value: 'done',
      })
      expect(await idem.transaction(db, { key: 'hooked-1', payload: 1 }, work)).toEqual({
        status: 'replayed',
        value: 'done',
      })
      expect(seen).toEqual([{ rewritten: true }])
      expect(await rig.effect('hooked-1')).toBe(1)
    })
  })
}

describe('fromKnex', () => {
  const fakeKnex = (driverName: string) =>
    Object.assign(() => undefined, { raw: () => undefined, client: { driverName } }) as unknown as Knex

  it('refuses the sqlite3 client, whose raw results do not count changed rows, with a TypeError', () => {
    expect(() => fromKnex(fakeKnex('sqlite3'))).toThrow(/better-sqlite3/)
  })

  it('refuses other clients and what is not Knex with a TypeError', () => {
    expect(() => fromKnex(fakeKnex('mssql'))).toThrow(TypeError)
    expect(() => fromKnex({} as Knex)).toThrow(TypeError)
  })

  it('reads the dialect from the client whatever name it was configured under', () => {
    expect(fromKnex(fakeKnex('pg')).dialect).toBe('postgres')
    expect(fromKnex(fakeKnex('mysql')).dialect).toBe('mysql')
    expect(fromKnex(fakeKnex('mysql2')).dialect).toBe('mysql')
    expect(fromKnex(fakeKnex('better-sqlite3')).dialect).toBe('sqlite')
  })

  it("rewrites PostgreSQL's $n as Knex's ? in order, and escapes the statement's own ?", () => {
    expect(toKnexPostgres(`SELECT $2, $1, $2 ? 'k', '$1 ?'`, ['a', 'b'])).toEqual([
      `SELECT ?, ?, ? \\? 'k', '$1 \\?'`,
      ['b', 'a', 'b'],
    ])
    expect(toKnexPostgres('SELECT x ?$1, y$1', ['a'])).toEqual(['SELECT x \\? ?, y$1', ['a']])
  })

  it('refuses a backslash before a ? on PostgreSQL, which Knex would drop', () => {
    expect(() => toKnexPostgres(`SELECT E'\\\\?' || $1`, ['a'])).toThrow(TypeError)
  })
})
