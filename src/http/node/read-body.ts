// Reading a node:http request body into bytes, refusing it past a limit.

import type { IncomingMessage } from 'node:http'
import { RequestTooLargeError } from '../core/errors.js'

export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  // Already read (a body parser that consumed it without leaving req.body): nothing will come.
  if (req.readableEnded || !req.readable) return Promise.resolve(undefined)
  const declared = Number(req.headers['content-length'])
  if (declared > limit) {
    // Drain what the client sends so the answer can still reach it on this connection.
    req.resume()
    return Promise.reject(new RequestTooLargeError(limit))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > limit) {
        req.off('data', onData)
        req.resume()
        reject(new RequestTooLargeError(limit))
      } else chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(bytes === 0 ? undefined : Buffer.concat(chunks, bytes)))
    // A client that goes away mid-body: node:http emits 'error' (aborted) before 'close'.
    req.once('error', reject)
  })
}
