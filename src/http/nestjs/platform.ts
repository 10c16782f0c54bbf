// What the interceptor needs from Nest's two HTTP platforms: the request described to the core,
// a decided response sent, and the handler's response captured as it goes out.
//
// The capture hooks the platform's own node:http response, below Nest: Nest serializes what the
// handler returns only after the interceptors (and exception filters write errors the same way),
// so the bytes the client receives exist only there. On Express that is the Express capture (no
// property added to the re-prototyped `res`); on Fastify it is `reply.raw`, which Fastify ends
// with the whole payload (`res.end(payload)`), so holding end() holds the last bytes until the key
// is stored, as on every adapter.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ResponseCapture } from '../core/response-capture.js'
import { setHeaderValues } from '../core/stored-response.js'
import type { HeaderRecord, HttpRequest, HttpResponse } from '../core/types.js'
import { captureExpressResponse } from '../express/express-capture.js'
import { captureResponse, sendResponse } from '../node/capture-response.js'
import { readBody } from '../node/read-body.js'

export interface Platform {
  /** The node:http request: one per exchange, whatever the platform wraps it in. */
  raw(request: unknown): IncomingMessage
  /** The request for the core; `limit` bounds a body read here (413 above it). */
  describe(request: unknown, limit: number): HttpRequest
  send(response: unknown, decided: HttpResponse): void
  capture(response: unknown, capture: ResponseCapture): void
}

/** Express's request as Nest's Express platform hands it over (the fields read here). */
interface ExpressRequest extends IncomingMessage {
  method: string
  originalUrl: string
  baseUrl: string
  path: string
  route?: { path?: unknown }
  body?: unknown
}

/** Fastify's request and reply as Nest's Fastify platform hands them over (the fields read and called here). */
interface FastifyRequest {
  raw: IncomingMessage
  method: string
  url: string
  headers: HeaderRecord
  body?: unknown
  routeOptions?: { url?: string }
}
interface FastifyReply {
  raw: ServerResponse
  code(status: number): FastifyReply
  header(name: string, value: string | string[]): FastifyReply
  send(payload: Buffer): FastifyReply
}

const express: Platform = {
  raw: (request) => request as IncomingMessage,
  describe(request, limit) {
    const req = request as ExpressRequest
    const template = req.route?.path
    const described: HttpRequest = {
      method: req.method,
      url: req.originalUrl,
      // Nest knows the route before the handler: its template, as on Fastify.
      route: `${req.baseUrl}${typeof template === 'string' ? template : req.path}`,
      headers: req.headers,
      body: req.body,
    }
    // A body parser that ran has drained the stream; one that skipped this content type has not:
    // the body is read here then, and left in `req.body` as `express.raw()` would.
    if (req.readable && !req.readableEnded) {
      described.body = undefined
      described.readBody = () =>
        readBody(req, limit).then((body) => {
          if (body !== undefined) req.body = body
          return body
        })
    }
    return described
  },
  send(response, decided) {
    sendResponse(response as ServerResponse, decided)
  },
  capture(response, capture) {
    captureExpressResponse(response as ServerResponse, capture)
  },
}

const fastify: Platform = {
  raw: (request) => (request as FastifyRequest).raw,
  // Fastify parsed the body (or refused it with its own bodyLimit) before any interceptor.
  describe(request) {
    const req = request as FastifyRequest
    return {
      method: req.method,
      url: req.url,
      route: req.routeOptions?.url ?? req.url.split('?', 1)[0] ?? '/',
      headers: req.headers,
      body: req.body,
    }
  },
  send(response, decided) {
    const reply = response as FastifyReply
    reply.code(decided.status)
    setHeaderValues(decided.headers, (name, value) => reply.header(name, value))
    const { body } = decided
    reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
  },
  capture(response, capture) {
    captureResponse((response as FastifyReply).raw, capture)
  },
}

/** The platform of a request: Fastify's objects wrap the node:http ones in `raw`, Express's are them. */
export function platformOf(request: unknown): Platform {
  const raw = (request as { raw?: unknown }).raw
  return typeof raw === 'object' && raw !== null ? fastify : express
}
