// Redis Streams with Idem: a confirming producer and an idempotent consumer-group member. A payment
// published twice (the producer's retry after a lost XADD reply) is charged once.
// Run it: npx tsx examples/brokers/redis-streams.ts (needs Redis on 127.0.0.1:6379).

import { fileURLToPath } from 'node:url'
import { Idempotency } from 'idem'
import { newMessageId } from 'idem/producer'
import { RedisStore } from 'idem/redis'
import { consumeRedisStream, redisStreamProducer } from 'idem/redis-streams'
import { Redis } from 'ioredis'

export interface Payment {
  orderId: string
  amountCents: number
}

export const SCOPE = 'payments'

export async function payOnce(redis: Redis, stream = 'payments'): Promise<{ messageId: string; charged: string[] }> {
  const idem = new Idempotency({ store: new RedisStore({ client: redis }), scope: SCOPE, lease: '30s' })
  const charged: string[] = []

  // A member of the group "billing": XREADGROUP batches, XACK once the outcome is stored,
  // XAUTOCLAIM for entries a dead worker left pending, poison messages to `${stream}:dead`.
  // Listeners given as `on` are attached before the first delivery: none is missed.
  let settledCount = 0
  let bothSettled!: () => void
  const settled = new Promise<void>((resolve) => {
    bothSettled = resolve
  })
  const consumer = await consumeRedisStream<Payment>({
    client: redis,
    stream,
    group: 'billing',
    idem,
    lease: '30s', // also how long an entry may sit unacknowledged before another member claims it
    handler: async (payment, ctx) => {
      charged.push(payment.orderId) // your side effect; pass ctx.derivedKey('charge') to a payment API
      return { charged: payment.amountCents, key: ctx.key }
    },
    on: {
      settled: () => {
        if (++settledCount === 2) bothSettled()
      },
    },
  })

  // The id is made once per message and reused by every retry: that is what makes the retry recognisable.
  const producer = redisStreamProducer({ client: redis, stream, maxLen: 100_000 })
  const message = { id: newMessageId(), payload: { orderId: 'order-1', amountCents: 4200 } }
  await producer.publish(message)
  await producer.publish(message) // the retry: a second entry, the same id

  await settled
  await consumer.close()
  return { messageId: message.id, charged }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const redis = new Redis('redis://127.0.0.1:6379')
  try {
    console.log(await payOnce(redis))
  } finally {
    redis.disconnect()
  }
}
