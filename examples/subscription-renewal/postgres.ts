// The renewal consumer on PostgreSQL (pg): the naive handler and the one behind idem.transaction.

import { Idempotency } from 'idem'
import { fromPg, PostgresStore } from 'idem/postgres'
import pg from 'pg'
import type { BeforeCommit, PaymentMessage, RenewalDatabase, Subscription } from './scenario.js'

const TABLES = `
  CREATE TABLE subscriptions (user_id text PRIMARY KEY, paid_until date NOT NULL);
  CREATE TABLE payments (
    id serial PRIMARY KEY,
    message_id text NOT NULL,
    user_id text NOT NULL REFERENCES subscriptions,
    amount integer NOT NULL
  );`

const INSERT_PAYMENT = 'INSERT INTO payments (message_id, user_id, amount) VALUES ($1, $2, $3)'
const EXTEND = `UPDATE subscriptions SET paid_until = paid_until + interval '1 year'
  WHERE user_id = $1 RETURNING paid_until::text`

/** The incident's consumer: correct transaction, no idempotency control, so every copy extends. */
function naiveHandler(pool: pg.Pool) {
  return async (message: PaymentMessage, beforeCommit?: BeforeCommit) => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query(INSERT_PAYMENT, [message.id, message.body.userId, message.body.amount])
      const { rows } = await client.query(EXTEND, [message.body.userId])
      beforeCommit?.()
      await client.query('COMMIT')
      return { paidUntil: rows[0].paid_until as string }
    } catch (error) {
      await client.query('ROLLBACK')
      throw error
    } finally {
      client.release()
    }
  }
}

/**
 * The fix: the same writes in idem.transaction. Idem inserts its record for the message id in the
 * transaction it opens on `client`, so the record, the payment and the new date commit together,
 * or roll back together. A duplicate finds the record and replays the stored renewal.
 */
function idemHandler(idem: Idempotency, pool: pg.Pool) {
  const db = fromPg<pg.PoolClient>(pool)
  return (message: PaymentMessage, beforeCommit?: BeforeCommit) =>
    idem.transaction(db, { key: message.id, payload: message.body }, async (client) => {
      await client.query(INSERT_PAYMENT, [message.id, message.body.userId, message.body.amount])
      const { rows } = await client.query(EXTEND, [message.body.userId])
      beforeCommit?.()
      return { paidUntil: rows[0].paid_until as string }
    })
}

/**
 * Two schemas under `schema` (`<schema>_naive`, `<schema>_idem`), each with the business tables
 * and `users` paid until `paidUntil`; Idem's records live next to them in the second one.
 */
export async function openPostgres(
  url: string,
  schema: string,
  users: readonly string[],
  paidUntil: string,
): Promise<RenewalDatabase> {
  const schemas = { naive: `${schema}_naive`, idem: `${schema}_idem` }
  const pools = {
    naive: new pg.Pool({ connectionString: url, options: `-c search_path=${schemas.naive}` }),
    idem: new pg.Pool({ connectionString: url, options: `-c search_path=${schemas.idem}` }),
  }
  try {
    for (const [consumer, pool] of Object.entries(pools)) {
      await pool.query(`CREATE SCHEMA "${schemas[consumer as 'naive' | 'idem']}"`)
      await pool.query(TABLES)
      for (const user of users) await pool.query('INSERT INTO subscriptions VALUES ($1, $2)', [user, paidUntil])
    }
    const store = new PostgresStore({ client: pools.idem, schema: schemas.idem })
    await store.ensureSchema()
    const idem = new Idempotency({ store, scope: 'billing:renew', ttl: '7d' })
    return {
      name: 'PostgreSQL',
      naive: naiveHandler(pools.naive),
      idem: idemHandler(idem, pools.idem),
      read: (consumer) => readSubscriptions(pools[consumer]),
      async close() {
        await pools.naive.query(`DROP SCHEMA IF EXISTS "${schemas.naive}", "${schemas.idem}" CASCADE`)
        await Promise.all([pools.naive.end(), pools.idem.end()])
      },
    }
  } catch (error) {
    await pools.naive.query(`DROP SCHEMA IF EXISTS "${schemas.naive}", "${schemas.idem}" CASCADE`).catch(() => {})
    await Promise.all([pools.naive.end(), pools.idem.end()])
    throw error
  }
}

async function readSubscriptions(pool: pg.Pool): Promise<Map<string, Subscription>> {
  const { rows } = await pool.query(`
    SELECT s.user_id, s.paid_until::text AS paid_until, count(p.id)::int AS payments
    FROM subscriptions s LEFT JOIN payments p USING (user_id) GROUP BY s.user_id, s.paid_until`)
  return new Map(rows.map((r) => [r.user_id as string, { paidUntil: r.paid_until, payments: r.payments }]))
}
