// A free TCP port on 127.0.0.1, as the kernel hands out for port 0: for servers a test starts as
// processes of their own (a private Redis, nginx), which must be told their port up front.

import { createServer } from 'node:net'

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}
