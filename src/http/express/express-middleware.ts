// idem/express: Idempotency-Key middleware for Express 5 and 4, over the HTTP core.

import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { HttpIdempotency } from '../core/http-idempotency.js'
import type { HttpIdempotencyOptions } from '../core/options.js'
import { captureResponse, sendResponse } from '../node/capture-response.js'
import { readBody } from '../node/read-body.js'

/**
 * Mount it after your body parser (`express.json()`…) to fingerprint the parsed body. When no
 * parser has read the body, the middleware reads it and leaves it in `req.body` as a Buffer (as
 * `express.raw()` would), and parsers mounted later skip the request.
 */
export function expressIdempotency(options: HttpIdempotencyOptions | HttpIdempotency): RequestHandler {
  const core = options instanceof HttpIdempotency ? options : new HttpIdempotency(options)
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
        if (decision.action === 'proceed') captureResponse(res, decision.capture)
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
