// A redis-server of the test's own, on a free loopback port, to kill and restart (on the same
// port) while the code under test holds a client to it. Built on the stores' startRedis helper.

import { freePort } from '../free-port.test-helper.js'
import { type RedisProcess, startRedis } from '../stores/redis/redis-server.test-helper.js'

export type { RedisProcess }

/** Start a private Redis (no persistence); `stop()` kills it by its pid and removes its directory. */
export async function startPrivateRedis(): Promise<RedisProcess & { url: string }> {
  const port = await freePort()
  const server = await startRedis(port)
  return Object.assign(server, { url: `redis://127.0.0.1:${port}` })
}
