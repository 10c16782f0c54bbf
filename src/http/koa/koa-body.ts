// The request body for the fingerprint, when no body parser mounted before the middleware read it,
// is read by node:http's readBody (up to maxRequestBytes); what is here hands it back to the
// application, so that a body parser or a handler mounted after the middleware reads ctx.req as if
// nothing had.

import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

/**
 * A request that is `req` in everything (headers, method, url, socket, `instanceof`) but whose
 * body, still unread, is `bytes`: what the middleware puts in place of a request it drained.
 *
 * A stream of its own whose prototype is `req`: what parsers and handlers read from a request
 * (headers, url, socket, httpVersion, and whatever else) stays the request's own, while the stream
 * state, its events and anything written to it (ctx.url = …) are the copy's. One object, unlike a
 * Proxy, whose two identities break the stream internals' `this === stream` checks.
 */
export function replayRequest(req: IncomingMessage, bytes: Buffer): IncomingMessage {
  const replay = new Readable({
    read() {},
    // Not IncomingMessage's _destroy, which would take the socket down with an unread copy.
    destroy: (error, callback) => callback(error),
  })
  if (bytes.length > 0) replay.push(bytes)
  replay.push(null)
  return Object.setPrototypeOf(replay, req) as IncomingMessage
}

/** The body as @koa/bodyparser leaves `rawBody`: text, when the bytes are UTF-8 (a lossy string would mislead a signature check). */
export function rawBodyText(bytes: Buffer): string | undefined {
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined
}
