// idem/hono: Idempotency-Key middleware for Hono (on @hono/node-server or any runtime with
// web streams), over the HTTP core.

import type { MiddlewareHandler } from 'hono'
import { RequestTooLargeError } from '../core/errors.js'
import { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
import type { ResponseCapture } from '../core/response-capture.js'

/**
 * Idempotency-Key middleware for Hono. `options` are the HTTP options (`{ store }` or `{ idem }`,
 * and the rest), or an `HttpIdempotency` shared between adapters. It reads the body with
 * `c.req.arrayBuffer()`; Hono caches it, so `c.req.json()` still works in the handler.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { MemoryStore } from 'idem'
 * import { honoIdempotency } from 'idem/hono'
 *
 * const app = new Hono()
 * app.use('/payments', honoIdempotency({ store: new MemoryStore(), required: true }))
 * app.post('/payments', async (c) => c.json(await charge(await c.req.json()), 201))
 * ```
 */
export function honoIdempotency(options: HttpAdapterOptions): MiddlewareHandler {
  const core = HttpIdempotency.from(options)
  return async (c, next) => {
    if (!core.covers(c.req.method)) return next()
    const url = new URL(c.req.url)
    const decision = await core.decide({
      method: c.req.method,
      url: url.pathname + url.search,
      route: c.req.path,
      headers: c.req.header(),
      // Hono caches the body it read, so c.req.json() and friends still work in the handler.
      readBody: async () => {
        if (Number(c.req.header('content-length')) > core.maxRequestBytes)
          throw new RequestTooLargeError(core.maxRequestBytes)
        const body = new Uint8Array(await c.req.arrayBuffer())
        if (body.byteLength > core.maxRequestBytes) throw new RequestTooLargeError(core.maxRequestBytes)
        return body.byteLength === 0 ? undefined : body
      },
    })
    if (decision.action === 'respond') {
      const { status, headers, body } = decision.response
      return new Response(body.byteLength === 0 ? null : body, { status, headers })
    }
    if (decision.action === 'pass') return next()
    const { capture } = decision
    try {
      await next()
    } catch (error) {
      await capture.abort(error)
      throw error
    }
    const res = c.res
    const headers: Array<[string, string]> = []
    res.headers.forEach((value, name) => {
      if (name !== 'set-cookie') headers.push([name, value])
    })
    for (const cookie of res.headers.getSetCookie()) headers.push(['set-cookie', cookie])
    if (res.body === null) {
      await capture.end(res.status, headers)
      return
    }
    c.res = new Response(tee(res.body, capture, res.status, headers), res)
  }
}

/** The body passed on as the server reads it, captured up to the limit; its end waits for the store. */
function tee(
  body: ReadableStream<Uint8Array>,
  capture: ResponseCapture,
  status: number,
  headers: Array<[string, string]>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Awaited<ReturnType<typeof reader.read>>
      try {
        chunk = await reader.read()
      } catch (error) {
        await capture.abort(error)
        controller.error(error)
        return
      }
      if (chunk.done) {
        await capture.end(status, headers)
        controller.close()
        return
      }
      capture.write(chunk.value)
      controller.enqueue(chunk.value)
    },
    // The client left while the body was on its way: the handler did its work, so read the rest
    // and store it (or stop at the size limit, then the key is kept as "response not stored").
    async cancel() {
      try {
        for (let chunk = await reader.read(); !chunk.done && !capture.overLimit; chunk = await reader.read()) {
          capture.write(chunk.value)
        }
        await capture.end(status, headers)
        await reader.cancel()
      } catch (error) {
        await capture.abort(error)
      }
    },
  })
}
