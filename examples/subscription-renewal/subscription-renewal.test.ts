import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { openPostgres } from './postgres.js'
import { type CaseOutcome, ONE_YEAR_LATER, PAID_UNTIL, renewSubscriptions, USERS } from './scenario.js'
import { openSqlite } from './sqlite.js'

const TWO_YEARS_LATER = '2028-03-15'

/** Read straight from one consumer's tables, not through the example's own reader. */
interface Tables {
  subscriptions: { user_id: string; paid_until: string }[]
  payments: { user_id: string; message_id: string }[]
  /** Idem's records (only in the Idem consumer's database), by state. */
  records?: { state: string }[]
}

function expectOutcome(outcomes: CaseOutcome[], naive: Tables, idem: Tables): void {
  const byUser = (rows: { user_id: string }[], user: string) => rows.filter((r) => r.user_id === user)

  // Idem: each user's single payment extended the subscription by exactly one year.
  for (const user of USERS) {
    expect(byUser(idem.subscriptions, user)).toEqual([{ user_id: user, paid_until: ONE_YEAR_LATER }])
    expect(byUser(idem.payments, user)).toEqual([{ user_id: user, message_id: `msg-${user}-1` }])
  }
  expect(idem.records?.map((r) => r.state)).toEqual(USERS.map(() => 'completed'))

  // Naive: every delivery that reached COMMIT extended again.
  expect(naive.subscriptions).toEqual(USERS.map((user) => ({ user_id: user, paid_until: TWO_YEARS_LATER })))
  for (const user of USERS) expect(byUser(naive.payments, user)).toHaveLength(2)

  // What each delivery did, and that the report matches the tables.
  expect(outcomes.map((o) => [o.userId, o.naive, o.idem])).toEqual([
    ['ana', ['applied', 'applied'], ['executed', 'replayed']],
    ['ben', ['applied', 'applied'], ['executed', 'replayed']],
    ['cleo', ['applied', 'applied'], ['executed', 'replayed']],
    ['dan', ['crashed', 'applied', 'applied'], ['crashed', 'executed', 'replayed']],
  ])
  for (const o of outcomes) {
    expect(o.idemState).toEqual({ paidUntil: ONE_YEAR_LATER, payments: 1 })
    expect(o.naiveState).toEqual({ paidUntil: TWO_YEARS_LATER, payments: 2 })
  }
}

describe('subscription renewal on SQLite', () => {
  it('extends each subscription by exactly one year whatever the duplicates, where the naive consumer gives two', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idem-renewal-test-'))
    try {
      const db = await openSqlite(dir, USERS, PAID_UNTIL)
      const outcomes = await renewSubscriptions(db).finally(() => db.close())
      const read = (file: string, withRecords: boolean): Tables => {
        const conn = new Database(join(dir, file), { readonly: true })
        try {
          return {
            subscriptions: conn.prepare('SELECT user_id, paid_until FROM subscriptions ORDER BY user_id').all(),
            payments: conn.prepare('SELECT user_id, message_id FROM payments ORDER BY id').all(),
            records: withRecords ? conn.prepare('SELECT state FROM idem_records').all() : undefined,
          } as Tables
        } finally {
          conn.close()
        }
      }
      expectOutcome(outcomes, read('naive.db', false), read('idem.db', true))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describe('subscription renewal on PostgreSQL', () => {
    it('extends each subscription by exactly one year whatever the duplicates, where the naive consumer gives two', async () => {
      const schema = isolatedName('renewal')
      const db = await openPostgres(SERVICES.PostgreSQL.url, schema, USERS, PAID_UNTIL)
      const client = new pg.Client({ connectionString: SERVICES.PostgreSQL.url })
      await client.connect()
      try {
        try {
          const outcomes = await renewSubscriptions(db)
          const read = async (s: string, withRecords: boolean): Promise<Tables> => ({
            subscriptions: (
              await client.query(`SELECT user_id, paid_until::text FROM "${s}".subscriptions ORDER BY user_id`)
            ).rows,
            payments: (await client.query(`SELECT user_id, message_id FROM "${s}".payments ORDER BY id`)).rows,
            records: withRecords ? (await client.query(`SELECT state FROM "${s}".idem_records`)).rows : undefined,
          })
          expectOutcome(outcomes, await read(`${schema}_naive`, false), await read(`${schema}_idem`, true))
        } finally {
          await db.close()
        }
        // close() dropped the example's schemas.
        const { rows } = await client.query('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`${schema}%`])
        expect(rows).toEqual([])
      } finally {
        await client.end()
      }
    })
  })
}
