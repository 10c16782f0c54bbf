// Drives the observed shop (shop.ts) with a retried payment, a key reused for another amount and
// an order published twice, then prints what Prometheus would scrape from /metrics.
// Run it: npx tsx examples/observability/main.ts (needs Redis on 127.0.0.1:6379).

import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'idem/logging'
import { newMessageId } from 'idem/producer'
import { redisStreamProducer } from 'idem/redis-streams'
import { Redis } from 'ioredis'
import { startShop } from './shop.js'

/** The traffic: 2 payments, each sent twice, one key reused for another amount; one order published twice. */
export async function driveShop(
  redis: Redis,
  stream: string,
  logger: Logger = console,
): Promise<{ metrics: string; shipped: string[] }> {
  const shop = await startShop(redis, stream, logger)
  try {
    const pay = (key: string, amount: number) =>
      fetch(`${shop.url}/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ amount }),
      })
    for (const key of [randomUUID(), randomUUID()]) {
      await pay(key, 42) // executed
      await pay(key, 42) // the client's retry: replayed
    }
    const reused = randomUUID()
    await pay(reused, 10)
    await pay(reused, 99) // the same key for another payment: 422, and a warning in the log

    let settled = 0
    shop.consumer.on('settled', () => settled++)
    const order = { id: newMessageId(), payload: { orderId: 'order-1' } }
    const producer = redisStreamProducer({ client: redis, stream })
    await producer.publish(order)
    await producer.publish(order) // the producer's retry after a lost reply: the same id
    while (settled < 2) await new Promise((resolve) => setTimeout(resolve, 20))

    const metrics = await (await fetch(`${shop.url}/metrics`)).text()
    return { metrics, shipped: shop.shipped }
  } finally {
    await shop.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const redis = new Redis('redis://127.0.0.1:6379')
  const stream = `idem-example-orders-${randomUUID()}`
  try {
    const { metrics, shipped } = await driveShop(redis, stream)
    console.log('shipped:', shipped)
    if (shipped.length !== 1) {
      console.error(`the order published twice was shipped ${shipped.length} times`)
      process.exitCode = 1
    }
    console.log(
      metrics
        .split('\n')
        .filter((line) => /^idem_(http_requests|requests|consumer_settled)_total/.test(line))
        .join('\n'),
    )
  } finally {
    await redis.del(stream, `${stream}:dead`)
    redis.disconnect()
  }
}
