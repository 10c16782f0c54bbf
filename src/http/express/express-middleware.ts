// idem/express: Idempotency-Key middleware for Express 5 and 4, over the HTTP core.

import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
import { sendResponse } from '../node/capture-response.js'
import { readBody } from '../node/read-body.js'
import { captureExpressResponse } from './express-capture.js'

/**
 * Idempotency-Key middleware for Express 5 and 4. `options` are the HTTP options (`{ store }` or
 * `{ idem }`, and the rest), or an `HttpIdempotency` shared between adapters.
 *
 * Mount it after your body parser (`express.json()`…) to fingerprint the parsed body. When no
 * parser has read the body, the middleware reads it and leaves it in `req.body` as a Buffer (as
 * `express.raw()` would), and parsers mounted later skip the request.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { MemoryStore } from 'idem'
 * import { expressIdempotency } from 'idem/express'
 *
 * const app = express()
 * app.use(express.json())
 * app.use(expressIdempotency({ store: new MemoryStore(), required: true }))
 * app.post('/payments', async (req, res) => res.status(201).json(await charge(req.body)))
 * ```
 */
export function expressIdempotency(options: HttpAdapterOptions): RequestHandler {
  const core = HttpIdempotency.from(options)
  return (req: Request, res: Response, next: NextFunction) => {
    if (!core.covers(req.method)) return next()
    // A body parser that ran has drained the stream; one that skipped this content type has not.
    const unread = req.readable && !req.readableEnded
    core
      .decide({
        method: req.method,
        url: req.originalUrl,
        route: `${req.baseUrl}${req.path}`,
        headers: req.headers,
        body: unread ? undefined : req.body,
        readBody: bodyReader(req, core.maxRequestBytes),
      })
      .then((decision) => {
        if (decision.action === 'respond') return sendResponse(res, decision.response)
        if (decision.action === 'proceed') captureExpressResponse(res, decision.capture)
        next()
      }, next)
  }
}

/** Reads the body when no parser did, leaving it in `req.body` as `express.raw()` would. */
function bodyReader(req: Request, limit: number): () => Promise<Uint8Array | undefined> {
  return () =>
    readBody(req, limit).then((body) => {
      if (body !== undefined) req.body = body
      return body
    })
}
