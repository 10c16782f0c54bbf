// readBody against a real socket: a client that sends part of its body and goes away makes it
// reject (node:http's 'aborted' error), a complete body is read, a body over the limit refused.

import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { RequestTooLargeError } from '../core/errors.js'
import { readBody } from './read-body.js'

/** A server that hands the first request to `onRequest`, and a way to send it raw bytes. */
async function server(onRequest: (req: IncomingMessage) => void) {
  const srv = createServer((req) => onRequest(req))
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as AddressInfo
  return {
    send(bytes: string, thenClose: boolean) {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(bytes)
        if (thenClose) setTimeout(() => socket.destroy(), 50)
      })
      socket.on('error', () => {})
      return socket
    },
    close: () => {
      srv.closeAllConnections()
      return new Promise<void>((resolve) => srv.close(() => resolve()))
    },
  }
}

describe('readBody', () => {
  it('rejects when the client goes away before its body is complete', async () => {
    let reading!: Promise<Uint8Array | undefined>
    const arrived = new Promise<void>((resolve) => {
      void server((req) => {
        reading = readBody(req, 1024)
        resolve()
      }).then((s) => {
        s.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789', true)
        afterwards.push(s)
      })
    })
    const afterwards: { close(): Promise<void> }[] = []
    await arrived
    await expect(reading).rejects.toThrow(/aborted/)
    for (const s of afterwards) await s.close()
  })

  it('reads a complete body, and refuses one over the limit', async () => {
    type Read = { ok: true; body: Uint8Array | undefined } | { ok: false; error: unknown }
    const bodies: Promise<Read>[] = []
    const s = await server((req) =>
      bodies.push(
        readBody(req, 8).then(
          (body): Read => ({ ok: true, body }),
          (error: unknown): Read => ({ ok: false, error }),
        ),
      ),
    )
    s.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', false)
    s.send('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n', false)
    await expect.poll(() => bodies.length).toBe(2)
    const [first, second] = await Promise.all(bodies)
    expect(first?.ok === true && Buffer.from(first.body as Uint8Array).toString()).toBe('hello')
    expect(second?.ok === false && second.error).toBeInstanceOf(RequestTooLargeError)
    await s.close()
  })
})
