// One logical store over three shards, then a fourth shard added without losing deduplication:
// every payment charged once, its duplicates replayed, those whose record stays on an old shard too.
// Run it: npx tsx examples/sharded.ts

import { fileURLToPath } from 'node:url'
import { Idempotency, MemoryStore, recordId } from 'idem'
import { ShardedStore } from 'idem/sharded'

const DAY_MS = 24 * 60 * 60 * 1000

export async function shardedPayments(): Promise<{ statuses: string[]; moved: number; charges: number }> {
  // In production each shard is a PostgresStore (or MysqlStore) on a database or schema of its own.
  const three = [
    { name: 'pay-1', store: new MemoryStore() },
    { name: 'pay-2', store: new MemoryStore() },
    { name: 'pay-3', store: new MemoryStore() },
  ]
  let charges = 0
  const charge = (orderId: string) => {
    charges++
    return { charged: orderId }
  }
  const orders = Array.from({ length: 12 }, (_, i) => `order-${i + 1}`)

  const before = new ShardedStore({ shards: three })
  const v1 = new Idempotency({ store: before, scope: 'payments', ttl: '1d' })
  for (const order of orders) await v1.run({ key: order, payload: { order } }, () => charge(order))

  // A fourth shard. Until `until` (the longest ttl after every process runs this configuration),
  // a key whose placement moved is looked up where it was first.
  const four = [...three, { name: 'pay-4', store: new MemoryStore() }]
  const after = new ShardedStore({ shards: four, previous: { shards: three, until: Date.now() + DAY_MS } })
  const v2 = new Idempotency({ store: after, scope: 'payments', ttl: '1d' })
  const statuses: string[] = []
  for (const order of orders) {
    const out = await v2.run({ key: order, payload: { order } }, () => charge(order))
    statuses.push(out.status)
  }
  const moved = orders.filter((order) => {
    const id = recordId('payments', order)
    return before.shardOf(id) !== after.shardOf(id)
  }).length

  // The shards were passed in, so they are ours to close (ownsShards: true would hand them over).
  await Promise.all(four.map((shard) => shard.store.close()))
  return { statuses, moved, charges }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { statuses, moved, charges } = await shardedPayments()
  console.log(`duplicates: ${statuses.join(', ')}`)
  console.log(`${moved} of ${statuses.length} keys moved to the new shard; ${charges} charges`)
}
