// The response Koa is about to send, captured where the middleware sees it: after the handler (the
// middleware chain below it) returned, from ctx.status, ctx.body and the response headers.
//
// Taken from ctx rather than from the socket: a handler whose client left still has its ctx.body,
// while Koa, seeing the connection closed, writes nothing (Koa 2) or an empty end (Koa 3), which
// would store an empty response. So the bytes are those Koa's respond() derives from ctx.body, by
// its own rules (below); the headers are those set on the response, once the ones respond() adds
// or strips are applied here, as respond() will again (setting them twice changes nothing).

import { PassThrough, Readable, Stream } from 'node:stream'
import type { ResponseCapture } from '../core/response-capture.js'
import { headerPairs, setHeaderValues } from '../core/stored-response.js'
import type { HttpResponse } from '../core/types.js'
import type { KoaIdempotencyContext } from './koa-types.js'

/** The statuses whose body Koa (and HTTP) never sends: `statuses.empty`. */
const EMPTY_STATUS: ReadonlySet<number> = new Set([204, 205, 304])
const NO_BYTES = new Uint8Array(0)

/**
 * Capture the response of `ctx` into `capture`. A body in one piece is stored before this resolves,
 * so Koa sends it only once the key is settled; a streamed body is replaced by a copy whose end
 * waits for the store. `ctx.respond = false` bypasses Koa, and the capture with it: the key is
 * released.
 */
export async function captureKoaResponse(ctx: KoaIdempotencyContext, capture: ResponseCapture): Promise<void> {
  if (ctx.respond === false) {
    await capture.abort(new Error('ctx.respond = false bypassed Koa: the response could not be captured'))
    return
  }
  const status = ctx.status
  const body = ctx.body
  let bytes: Uint8Array
  if (EMPTY_STATUS.has(status) || ctx.method === 'HEAD') {
    // respond() sets ctx.body = null for these statuses, which strips the body's headers.
    if (EMPTY_STATUS.has(status)) ctx.body = null
    bytes = NO_BYTES
  } else if (body === null || body === undefined) bytes = statusBody(ctx, status)
  else if (typeof body === 'string') bytes = Buffer.from(body)
  else if (Buffer.isBuffer(body)) bytes = body
  else {
    const stream = streamOf(body)
    if (stream === 'empty') bytes = NO_BYTES
    else if (stream !== undefined) {
      teeBody(ctx, stream, capture, status)
      return
    } else bytes = Buffer.from(JSON.stringify(body))
  }
  capture.write(bytes)
  await capture.end(status, headerPairs(ctx.res.getHeaders()))
}

/** What respond() sends without a body: nothing after `ctx.body = null`, else the status text. */
function statusBody(ctx: KoaIdempotencyContext, status: number): Uint8Array {
  const headersSent = ctx.res.headersSent
  if (ctx.response._explicitNullBody === true) {
    if (!headersSent) {
      ctx.remove('Content-Type')
      ctx.remove('Transfer-Encoding')
    }
    return NO_BYTES
  }
  const text = ctx.req.httpVersionMajor >= 2 ? String(status) : ctx.message || String(status)
  if (!headersSent) ctx.type = 'text'
  return Buffer.from(text)
}

/**
 * The body as a Node stream when Koa streams it: a Node stream (Koa 2 and 3), or a Blob, a web
 * ReadableStream or a Response (Koa 3; Koa 2 would send these as JSON, so they are streamed here
 * either way). 'empty' for a Response without a body; undefined for any other value (JSON).
 */
function streamOf(body: unknown): Readable | 'empty' | undefined {
  if (body instanceof Stream) return body as Readable
  if (body instanceof Blob) return Readable.fromWeb(body.stream())
  if (body instanceof ReadableStream) return Readable.fromWeb(body as ReadableStream<Uint8Array>)
  if (body instanceof Response) return body.body === null ? 'empty' : Readable.fromWeb(body.body)
  if (isStreamLike(body)) return body
  return undefined
}

/** A stream from another copy of node:stream (Koa 3's own test). */
function isStreamLike(body: unknown): body is Readable {
  const value = body as Partial<Record<'pipe' | 'read' | 'on', unknown>> & { readable?: unknown }
  return (
    typeof body === 'object' &&
    value.readable === true &&
    typeof value.pipe === 'function' &&
    typeof value.read === 'function' &&
    typeof value.on === 'function'
  )
}

/**
 * A streamed body: Koa sends a copy that passes the chunks on as they come, captured up to the
 * limit; its end waits until the key is stored. A stream that fails, or that Koa destroys (it
 * does when the connection closes first), releases the key.
 */
function teeBody(ctx: KoaIdempotencyContext, source: Readable, capture: ResponseCapture, status: number): void {
  // Koa 2 listens to a stream body's errors itself: the copy then ends without the error, so
  // that Koa reports it once. Koa 3 does not, and reports the copy's error.
  const reportedByKoa = source.listenerCount('error') > 0
  const out = new PassThrough()
  const length = ctx.res.getHeader('content-length')
  const headers = headerPairs(ctx.res.getHeaders())
  source.on('data', (chunk: Buffer | string) => capture.write(chunk))
  source.once('end', () => void capture.end(status, headers).then(() => out.end()))
  source.once('error', (error) => void capture.abort(error).then(() => out.destroy(reportedByKoa ? undefined : error)))
  source.once('close', () => {
    if (!capture.done) void capture.abort(new Error('the body stream closed before its end')).then(() => out.destroy())
  })
  source.pipe(out, { end: false })
  ctx.body = out
  // Replacing a stream body drops Content-Length: the copy is as long as the stream.
  if (length !== undefined && !ctx.res.headersSent) ctx.res.setHeader('content-length', length)
}

/**
 * Answer with a response the core decided (a replay or a problem), through Koa as any body: the
 * middleware mounted before this one still sees it, and Koa sends it.
 */
export function respondWith(ctx: KoaIdempotencyContext, response: HttpResponse): void {
  ctx.status = response.status
  let typed = false
  setHeaderValues(response.headers, (name, value) => {
    if (name === 'content-type') typed = true
    ctx.set(name, value)
  })
  const { body } = response
  ctx.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  // Koa types a Buffer body application/octet-stream; the stored response had no type.
  if (!typed) ctx.remove('Content-Type')
}
