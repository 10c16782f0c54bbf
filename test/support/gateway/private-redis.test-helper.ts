// A redis-server of the test's own, on a free loopback port, to kill and restart (on the same
// port) while the code under test holds a client to it. Built on the stores' startRedis helper.

import { createServer } from 'node:net'
import { type RedisProcess, startRedis } from '../stores/redis/redis-server.test-helper.js'

export type { RedisProcess }

/** A loopback port nothing listens on now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port)
        else reject(new Error('no port was assigned'))
      })
    })
  })
}

/** Start a private Redis (no persistence); `stop()` kills it by its pid and removes its directory. */
export async function startPrivateRedis(): Promise<RedisProcess & { url: string }> {
  const port = await freePort()
  const server = await startRedis(port)
  return Object.assign(server, { url: `redis://127.0.0.1:${port}` })
}
