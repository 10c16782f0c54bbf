// Broker traffic of the soak run: a Redis Streams producer publishing steady messages to a stream
// of this run, a fraction of them twice (at once, or later with the same id, as a producer's retry
// would), and Idem's consumer-group member handling them. Every handler execution is counted per
// key; every delivery must settle as executed or replayed.

import { setTimeout as sleep } from 'node:timers/promises'
import { consumeRedisStream, redisStreamProducer } from '../src/brokers/redis-streams/index.js'
import { InProgressError } from '../src/errors.js'
import type { Traffic } from './http-traffic.js'
import type { Errors, Ledger } from './ledger.js'
import { redisClient, type SoakStore } from './stores.js'
import { type DuplicateMix, startDuplicateTraffic } from './traffic-shape.js'

export interface ConsumerTrafficOptions {
  store: SoakStore
  ledger: Ledger
  errors: Errors
  rate: number
  mix: DuplicateMix
  random: () => number
  runId: string
  /**
   * The consumer's lease, s: also how long an entry stays pending before it is claimed again.
   * Below the ttl on purpose: a copy of a key that this same consumer is still running, read in a
   * later batch, is handed back until the lease would lapse (the report's notes), and it must come
   * again while the record is still retained, or it runs again.
   */
  leaseS: number
  maxInFlight?: number
  handlerMs?: number
}

interface Published {
  key: string
  payload: { key: string; amount: number }
  at: number
}

export async function startConsumerTraffic(options: ConsumerTrafficOptions): Promise<Traffic> {
  const { ledger, errors } = options
  const where = `consumer ${options.store.name}`
  const handlerMs = options.handlerMs ?? 2
  const maxInFlight = options.maxInFlight ?? 2000
  // Outside the Redis store's prefix, so that the store's size counts records only.
  const stream = `soak-stream:${options.runId}:${options.store.name}`
  const client = redisClient({ autoPipelining: false })
  const consumer = await consumeRedisStream<Published['payload']>({
    client,
    stream,
    group: 'soak',
    idem: options.store.idem,
    scope: `soak-consumer-${options.runId}`,
    concurrency: 16,
    block: '1s',
    lease: options.leaseS * 1000,
    handler: async (payload) => {
      ledger.executed(payload.key)
      await sleep(handlerMs)
      return { charged: payload.amount }
    },
    on: {
      settled: (result) => {
        if (result.outcome === 'retried' && result.error instanceof InProgressError) {
          // Handed back to come again once the holder's lease lapsed: not settled yet, not an error.
          ledger.retriedInProgress++
          return
        }
        ledger.done++
        if (result.outcome === 'replayed') ledger.replayed++
        else if (result.outcome !== 'executed') errors.add(where, `${result.key} ${result.outcome}: ${result.reason}`)
      },
      broker_error: (event) => errors.add(`${where} ${event.operation}`, event.error),
    },
    onError: (error) => errors.add(where, error),
  })
  // Trimmed so that the stream stays bounded too; far above any backlog this run allows (maxInFlight).
  const producer = redisStreamProducer({ client, stream, maxLen: 10 * maxInFlight })

  const publish = (message: Published) => {
    ledger.sent++
    producer.publish({ id: message.key, payload: message.payload }).catch((error) => {
      ledger.done++ // it will never settle
      errors.add(`${where} publish`, error)
    })
  }
  const pacer = startDuplicateTraffic<Published>({
    rate: options.rate,
    mix: options.mix,
    random: options.random,
    ledger,
    maxInFlight,
    make: (seq, now) => {
      const key = `m-${options.runId}-${seq}`
      return { key, payload: { key, amount: seq % 10_000 }, at: now }
    },
    send: publish,
  })

  return {
    stop: () => pacer.stop(),
    async drain(timeoutMs) {
      const until = Date.now() + timeoutMs
      while (ledger.inFlight > 0 && Date.now() < until) await sleep(20)
    },
    async close() {
      await consumer.close()
      await producer.close()
      await client.del(stream, `${stream}:dead`)
      await client.quit()
    },
  }
}
