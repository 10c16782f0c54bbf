// consumeRedisStream: a consumer group member that feeds the Idem consumer core (the member at
// work is stream-worker.ts): its options, its handle, and their checks.

import {
  type ConsumerHandle,
  type ConsumerSource,
  type ConsumerStats,
  consumerHandle,
  resolveConsumer,
} from '../../consumer/handle.js'
import { streamClientOf } from './node-redis-stream-client.js'
import { readConnectionOf } from './read-connection.js'
import { type RedisStreamOptions, resolveStreamOptions } from './redis-stream-options.js'
import { StreamWorker } from './stream-worker.js'

/**
 * consumeRedisStream's options: the Redis Streams ones and, flat beside them, the consumer core's
 * (`{ idem, handler }` or `{ idem, db, transactionHandler }`, `concurrency`, `on`, …), or a
 * ready-made `consumer`.
 */
export type ConsumeRedisStreamOptions<P = unknown, Tx = unknown> = RedisStreamOptions<P> & ConsumerSource<P, Tx>

/** @deprecated Use `ConsumeRedisStreamOptions`. */
export type RedisStreamConsumerOptions<P = unknown, Tx = unknown> = ConsumeRedisStreamOptions<P, Tx>

/** What consumeRedisStream resolves to: the common handle, and this worker's name in the group. */
export type RedisStreamHandle<P = unknown, Tx = unknown> = ConsumerHandle<P, Tx> & {
  /** This worker's name in the group. */
  readonly consumerName: string
}

/** @deprecated Use `RedisStreamHandle` (a `ConsumerHandle` with `consumerName`). */
export type RedisStreamConsumer<P = unknown, Tx = unknown> = RedisStreamHandle<P, Tx>

/**
 * Join `group` on `stream` (creating both if needed) and hand its entries to the idempotent
 * consumer: per entry, claim, run the handler, store the outcome, and only then XACK.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis'
 * import { consumeRedisStream } from 'idem/redis-streams'
 *
 * const redis = new Redis() // or, with node-redis: await createClient().connect()
 * const orders = await consumeRedisStream<Order>({
 *   client: redis,
 *   stream: 'orders',
 *   group: 'billing',
 *   idem,
 *   handler: (order, ctx) => shipOrder(order, ctx.key),
 *   on: { settled: (result) => console.log(result.key, result.outcome) },
 * })
 * // on shutdown:
 * await orders.close()
 * ```
 */
export async function consumeRedisStream<P = unknown, Tx = unknown>(
  options: ConsumeRedisStreamOptions<P, Tx>,
): Promise<RedisStreamHandle<P, Tx>> {
  if (options?.client === undefined) {
    throw new TypeError('consumeRedisStream needs client: an ioredis client or a connected node-redis client')
  }
  if (options.readClient !== undefined && options.readClient === options.client) {
    throw new TypeError('readClient must be another connection than client: XREADGROUP BLOCK holds its connection')
  }
  // From here on both drivers look alike (node-redis is wrapped; ioredis is used as it is).
  const client = streamClientOf(options.client)
  const { core, options: consumerOptions } = resolveConsumer(options, 'consumeRedisStream')
  // The broker's idle limit follows the Idem lease: both say when a silent worker counts as dead.
  const resolved = resolveStreamOptions(options, consumerOptions?.lease)
  const reader = options.readClient === undefined ? readConnectionOf(client) : streamClientOf(options.readClient)
  const stats: ConsumerStats = { rejected: 0 }
  const worker = new StreamWorker(core, client, reader, options.readClient === undefined, resolved, stats)
  try {
    await worker.start()
  } catch (error) {
    await worker.close()
    throw error
  }
  return consumerHandle(
    core,
    stats,
    { close: () => worker.close(), done: worker.done },
    { consumerName: resolved.consumerName, lag: () => worker.lag() },
  )
}
