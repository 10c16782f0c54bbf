// How a worker of the run reaches RabbitMQ: through the proxy, on a recovering connection (amqplib
// opens it again after a cut, a blackhole or a broker restart), with a heartbeat short enough for
// the broker to notice a frozen worker.

import amqp, { type RecoveringChannelModel } from 'amqplib'
import type { WorkerConfig } from '../worker-config.js'

/**
 * Unacknowledged messages the broker sends ahead to a worker: twice the concurrency, the adapter's
 * default, as many as the Redis Streams workers read at a time.
 */
export function prefetchOf(config: WorkerConfig): number {
  return 2 * config.concurrency
}

/**
 * RabbitMQ has no redelivery timer: it requeues a consumer's unacknowledged messages when its
 * connection dies, and it finds a frozen consumer dead after two to three heartbeat intervals
 * without a frame. A heartbeat of half the lease (1 s for the run's 2 s) hands a stalled worker's
 * messages to the others after one to one and a half leases, as JetStream's ack_wait does.
 */
function heartbeatSeconds(config: WorkerConfig): number {
  return Math.max(1, Math.round(config.leaseMs / 2000))
}

export async function connectThroughProxy(config: WorkerConfig): Promise<RecoveringChannelModel> {
  const connection = await amqp.connect(
    { hostname: '127.0.0.1', port: config.brokerPort, heartbeat: heartbeatSeconds(config) },
    {
      // A connect into a blackhole fails after 3 s and is tried again.
      timeout: 3000,
      recovery: {
        initialDelay: 100,
        // The broker restarts in a few seconds: come back soon after it does.
        maxDelay: 1000,
        // A first connection that meets a fault ends the process, which is started again (fleet.ts).
        initialMaxRetries: 0,
      },
    },
  )
  connection.on('error', () => {})
  return connection
}
