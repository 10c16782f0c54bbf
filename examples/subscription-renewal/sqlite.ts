// The renewal consumer on SQLite (better-sqlite3): the naive handler and the one behind idem.transaction.

import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Idempotency } from 'idem'
import { fromBetterSqlite3, SqliteStore } from 'idem/sqlite'
import type { BeforeCommit, PaymentMessage, RenewalDatabase, Subscription } from './scenario.js'

type Db = Database.Database

const TABLES = `
  CREATE TABLE subscriptions (user_id TEXT PRIMARY KEY, paid_until TEXT NOT NULL);
  CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES subscriptions,
    amount INTEGER NOT NULL
  );`

const INSERT_PAYMENT = 'INSERT INTO payments (message_id, user_id, amount) VALUES (?, ?, ?)'
const EXTEND = `UPDATE subscriptions SET paid_until = date(paid_until, '+1 year')
  WHERE user_id = ? RETURNING paid_until`

/** The incident's consumer: correct transaction, no idempotency control, so every copy extends. */
function naiveHandler(db: Db) {
  const renew = db.transaction((message: PaymentMessage, beforeCommit?: BeforeCommit) => {
    db.prepare(INSERT_PAYMENT).run(message.id, message.body.userId, message.body.amount)
    const row = db.prepare(EXTEND).get(message.body.userId) as { paid_until: string }
    beforeCommit?.()
    return { paidUntil: row.paid_until }
  })
  return async (message: PaymentMessage, beforeCommit?: BeforeCommit) => renew(message, beforeCommit)
}

/**
 * The fix: the same writes in idem.transaction. Idem opens BEGIN IMMEDIATE on `db` and inserts
 * its record for the message id there, so the record, the payment and the new date commit
 * together, or roll back together. A duplicate finds the record and replays the stored renewal.
 */
function idemHandler(idem: Idempotency, database: Db) {
  const db = fromBetterSqlite3(database)
  return (message: PaymentMessage, beforeCommit?: BeforeCommit) =>
    idem.transaction(db, { key: message.id, payload: message.body }, async (tx) => {
      tx.prepare(INSERT_PAYMENT).run(message.id, message.body.userId, message.body.amount)
      const row = tx.prepare(EXTEND).get(message.body.userId) as { paid_until: string }
      beforeCommit?.()
      return { paidUntil: row.paid_until }
    })
}

/**
 * Two database files in `dir` (naive.db, idem.db), each with the business tables and `users`
 * paid until `paidUntil`; Idem's records live next to them in idem.db.
 *
 * One connection per file: Idem runs the transactions it opens on a connection one after another,
 * as SQLite runs one writer at a time anyway (other processes wait on BEGIN IMMEDIATE).
 */
export async function openSqlite(dir: string, users: readonly string[], paidUntil: string): Promise<RenewalDatabase> {
  const dbs = { naive: new Database(join(dir, 'naive.db')), idem: new Database(join(dir, 'idem.db')) }
  for (const db of Object.values(dbs)) {
    db.exec(TABLES)
    const insert = db.prepare('INSERT INTO subscriptions VALUES (?, ?)')
    for (const user of users) insert.run(user, paidUntil)
  }
  const store = new SqliteStore({ client: dbs.idem })
  store.ensureSchema()
  const idem = new Idempotency({ store, scope: 'billing:renew', ttl: '7d' })
  return {
    name: 'SQLite',
    naive: naiveHandler(dbs.naive),
    idem: idemHandler(idem, dbs.idem),
    read: async (consumer) => readSubscriptions(dbs[consumer]),
    async close() {
      await store.close()
      dbs.naive.close()
      dbs.idem.close()
    },
  }
}

function readSubscriptions(db: Db): Map<string, Subscription> {
  const rows = db
    .prepare(`SELECT s.user_id, s.paid_until, count(p.id) AS payments
      FROM subscriptions s LEFT JOIN payments p USING (user_id) GROUP BY s.user_id`)
    .all() as { user_id: string; paid_until: string; payments: number }[]
  return new Map(rows.map((r) => [r.user_id, { paidUntil: r.paid_until, payments: r.payments }]))
}
