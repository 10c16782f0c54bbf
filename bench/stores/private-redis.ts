// A redis-server of the benchmark's own on a spare loopback port, without persistence, so that
// millions of records never land in the shared Redis. The process handling is the tests' own
// (startRedis: a child process, never --daemonize, killed at exit whatever happens); this file
// only picks a port nothing listens on, so that it never replaces someone else's server.

import { Redis } from 'ioredis'
import { reachable } from '../../test/reachable.js'
import { startRedis } from '../../test/support/stores/redis/redis-server.test-helper.js'

export interface PrivateRedis {
  port: number
  client: Redis
  stop(): Promise<void>
}

/** Start redis-server on the first free port from `preferred` (at most 20 tried). */
export async function startPrivateRedis(preferred: number): Promise<PrivateRedis> {
  let port = preferred
  while (await reachable(port)) {
    if (++port >= preferred + 20) throw new Error(`no free port in ${preferred}-${preferred + 19} for a private Redis`)
  }
  const server = await startRedis(port)
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 2 })
  client.on('error', () => {})
  await client.ping()
  return {
    port,
    client,
    stop: async () => {
      client.disconnect()
      await server.stop()
    },
  }
}
