// Whether a local port accepts connections. No test framework here, so benchmarks can use it too.

import { Socket } from 'node:net'

/** True when something accepts TCP connections on 127.0.0.1:`port` within `timeoutMs`. */
export function reachable(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, host, () => done(true))
  })
}
