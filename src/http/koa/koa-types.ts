// Koa as the middleware uses it: the part of a context it reads and writes, typed here so that
// idem/koa needs neither koa nor @types/koa. A Koa 2 or Koa 3 context (typed by @types/koa or not)
// has all of it, so the middleware goes into app.use() as it is.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'

/** The part of a Koa context (Koa 2 and 3) the middleware uses. */
export interface KoaIdempotencyContext {
  method: string
  /** The URL as received, before any rewrite or mount: the request's target and, without its query, its route. */
  originalUrl: string
  headers: IncomingHttpHeaders
  req: IncomingMessage
  res: ServerResponse
  request: {
    req: IncomingMessage
    /** A body parser's result (@koa/bodyparser, koa-bodyparser). */
    body?: unknown
    /** The body as text, left by @koa/bodyparser and koa-bodyparser (and by the middleware when it reads the body). */
    rawBody?: unknown
  }
  response: {
    req: IncomingMessage
    /** Set by Koa when the handler assigned `ctx.body = null`. */
    _explicitNullBody?: boolean
  }
  status: number
  body: unknown
  message: string
  type: string
  /** `false` bypasses Koa's response handling. */
  respond?: boolean
  set(field: string, value: string | string[]): void
  remove(field: string): void
}

/** Koa's `next`. */
export type KoaNext = () => Promise<unknown>

/** The middleware `koaIdempotency` returns: `app.use()` takes it, in Koa 2 and Koa 3. */
export type KoaIdempotencyMiddleware = (ctx: KoaIdempotencyContext, next: KoaNext) => Promise<void>
