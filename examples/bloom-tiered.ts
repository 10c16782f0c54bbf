// TieredStore with a Bloom filter: a consumer whose keys are mostly new skips the Redis read for
// each key it has never begun and goes straight to PostgreSQL's claim; a duplicate coming back to
// the same process is in the filter, so it is answered by Redis as before.
// Run it: npx tsx examples/bloom-tiered.ts (needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379).

import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { PostgresStore } from 'idem/postgres'
import { RedisResultCache, TieredStore } from 'idem/tiered'
import { Redis } from 'ioredis'
import pg from 'pg'

export async function chargeOrders(names: { schema: string; prefix: string }) {
  const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' })
  const redis = new Redis({ maxRetriesPerRequest: 1 })
  const primary = new PostgresStore({ client: pool, schema: names.schema })
  await primary.ensureSchema()
  const store = new TieredStore({
    primary,
    cache: new RedisResultCache({ client: redis, prefix: names.prefix }),
    // Remembers at least the last 100 000 keys begun here, at 1% false positives: 276 KB.
    bloom: { expectedItems: 100_000, falsePositiveRate: 0.01 },
  })
  const idem = new Idempotency({ store, scope: 'payments' })
  const charged: string[] = []
  const charge = (order: string) =>
    idem.run({ key: order, payload: { order } }, () => {
      charged.push(order) // your effect
      return { charged: order }
    })

  const orders = ['order-1', 'order-2', 'order-3']
  const first = [] // new keys: no Redis read, one claim each in PostgreSQL
  for (const order of orders) first.push((await charge(order)).status)
  const skippedOnNewKeys = store.skippedCacheReads
  const again = [] // the broker redelivers them here: in the filter, answered by Redis
  for (const order of orders) again.push((await charge(order)).status)

  const report = { first, again, charged, skippedOnNewKeys, skippedAfter: store.skippedCacheReads }
  await pool.query(`DROP SCHEMA ${names.schema} CASCADE`) // the example's own tables
  await store.close() // closes the primary and the cache; the pool and the client are ours
  await pool.end()
  redis.disconnect()
  return report
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(
    await chargeOrders({ schema: `idem_example_bloom_${process.pid}`, prefix: `idem:example:bloom:${Date.now()}:` }),
  )
}
