// The version check: its checks without a database, then every outcome, racing writers, a lost
// update prevented and transaction rollback on SQLite, PostgreSQL and MariaDB.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type GuardRig, onEachDatabase } from '../../test/support/guards/guard-rigs.test-helper.js'
import { counting, raceOnRow, recordingExecutor, run } from '../../test/support/guards/guard-sql.test-helper.js'
import { defineVersionCheck } from './version-check.js'

describe('defineVersionCheck', () => {
  it('refuses names that are not plain identifiers', () => {
    for (const table of ['accounts where 1=1', 'a.b.c', '', 'acc-ounts']) {
      expect(() => defineVersionCheck({ table }), table).toThrow(TypeError)
    }
    expect(() => defineVersionCheck({ table: 'accounts', column: 'v"' })).toThrow(TypeError)
    expect(() => defineVersionCheck({ table: 'accounts', id: 'version' })).toThrow(/different columns/)
  })

  it('refuses a bad expected version or a set that touches the id or the version, before any statement', async () => {
    const accounts = defineVersionCheck({ table: 'accounts' })
    const sql = recordingExecutor('sqlite')
    for (const expected of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      await expect(accounts.update(sql, 'a', expected, { set: { balance: 1 } }), String(expected)).rejects.toThrow(
        /non-negative integer/,
      )
    }
    for (const set of [{ version: 9 }, { id: 'b' }, { 'balance=0 --': 1 }]) {
      await expect(accounts.update(sql, 'a', 1, { set }), JSON.stringify(set)).rejects.toThrow(TypeError)
    }
    expect(sql.calls).toEqual([])
  })

  it('bumps the version in the UPDATE and sends every value as a parameter', async () => {
    const accounts = defineVersionCheck({ table: 'bank.accounts', id: 'account_id', column: 'rev' })
    const sql = recordingExecutor('postgres')
    expect(await accounts.update(sql, 'a1', 4, { set: { balance: 90, note: "x'; --" } })).toEqual({
      outcome: 'updated',
      version: 5,
    })
    expect(sql.calls).toEqual([
      {
        sql: 'UPDATE "bank"."accounts" SET "rev" = "rev" + 1, "balance" = $1, "note" = $2 WHERE "account_id" = $3 AND "rev" = $4',
        params: [90, "x'; --", 'a1', 4],
      },
    ])
  })
})

function describeVersionCheck(name: string, makeRig: () => Promise<GuardRig>): void {
  describe(`version check on ${name}`, () => {
    let rig: GuardRig
    let accounts: ReturnType<typeof defineVersionCheck>
    const insert = (id: string, balance: number, version = 0) =>
      run(rig, 'accounts', 'INSERT INTO {t} (id, balance, version) VALUES (?, ?, ?)', [id, balance, version])
    const row = async (id: string) => {
      const found = (await run(rig, 'accounts', 'SELECT balance, version FROM {t} WHERE id = ?', [id])).rows[0]
      return found && { balance: Number(found.balance), version: Number(found.version) }
    }

    beforeAll(async () => {
      rig = await makeRig()
      // bigint: pg returns it as a string, which the check must still read as a number.
      await rig.createTable('accounts', 'id varchar(64) PRIMARY KEY, balance integer NOT NULL, version bigint NOT NULL')
      accounts = defineVersionCheck({ table: rig.table('accounts') })
    })
    afterAll(() => rig?.cleanup())

    it('writes the row and returns the next version, in one statement', async () => {
      await insert('ok-1', 100, 3)
      const sql = counting(rig.sql)
      expect(await accounts.update(sql, 'ok-1', 3, { set: { balance: 90 } })).toEqual({
        outcome: 'updated',
        version: 4,
      })
      expect(sql.statements).toBe(1)
      expect(await row('ok-1')).toEqual({ balance: 90, version: 4 })
    })

    it('refuses a write from a stale read with the current version, and keeps the newer write', async () => {
      await insert('lost-1', 100)
      // Two workers read version 0 and balance 100; each withdraws from what it read.
      const first = await accounts.update(rig.sql, 'lost-1', 0, { set: { balance: 100 - 30 } })
      const second = await accounts.update(rig.sql, 'lost-1', 0, { set: { balance: 100 - 50 } })
      expect([first, second]).toEqual([
        { outcome: 'updated', version: 1 },
        { outcome: 'conflict', currentVersion: 1 },
      ])
      expect(await row('lost-1')).toEqual({ balance: 70, version: 1 })
    })

    it('reports a missing row as not_found', async () => {
      expect(await accounts.update(rig.sql, 'absent-1', 0, { set: { balance: 1 } })).toEqual({ outcome: 'not_found' })
      expect(await row('absent-1')).toBeUndefined()
    })

    it('lets exactly one of 10 concurrent writers at the same version win; the rest see a conflict', async () => {
      await insert('race-1', 0, 7)
      const outcomes = await raceOnRow(rig, 'accounts', 'version', 'race-1', 10, (sql, i) =>
        accounts.update(sql, 'race-1', 7, { set: { balance: i + 1 } }),
      )
      const winners = outcomes.flatMap((out, i) => (out.outcome === 'updated' ? [i] : []))
      expect(winners).toHaveLength(1)
      expect(outcomes.filter((out) => out.outcome === 'conflict' && out.currentVersion === 8)).toHaveLength(9)
      expect(await row('race-1')).toEqual({ balance: (winners[0] ?? -1) + 1, version: 8 })
    })

    it('rolls back with the idem.transaction it runs in', async () => {
      const idem = await rig.idem()
      await insert('tx-1', 100, 1)
      await expect(
        idem.transaction(rig.db, { key: 'withdraw:tx-1' }, async (_tx, ctx) => {
          expect(await accounts.update(ctx.sql, 'tx-1', 1, { set: { balance: 60 } })).toMatchObject({
            outcome: 'updated',
          })
          throw new Error('audit log unavailable')
        }),
      ).rejects.toThrow('audit log unavailable')
      expect(await row('tx-1')).toEqual({ balance: 100, version: 1 })
    })
  })
}

await onEachDatabase(describeVersionCheck)
