// idem/koa: Idempotency-Key middleware for Koa 2 and Koa 3, over the HTTP core.

import { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
import { readBody } from '../node/read-body.js'
import { rawBodyText, replayRequest } from './koa-body.js'
import { captureKoaResponse, respondWith } from './koa-response.js'
import type { KoaIdempotencyContext, KoaIdempotencyMiddleware } from './koa-types.js'

/**
 * Idempotency-Key middleware for Koa 2 and Koa 3. `options` are the HTTP options (`{ store }` or
 * `{ idem }`, and the rest), or an `HttpIdempotency` shared between adapters.
 *
 * The body it fingerprints: what a body parser mounted before it left (`ctx.request.rawBody`, else
 * `ctx.request.body`); when none read the request, it reads `ctx.req` itself (up to
 * `maxRequestBytes`, else 413) and puts an unread copy of it in `ctx.req`, so that a body parser
 * or a handler mounted after it reads the body as usual; it also sets `ctx.request.rawBody` (text).
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { bodyParser } from '@koa/bodyparser'
 * import { MemoryStore } from 'idem'
 * import { koaIdempotency } from 'idem/koa'
 *
 * const app = new Koa()
 * app.use(bodyParser())
 * app.use(koaIdempotency({ store: new MemoryStore(), required: true }))
 * app.use(async (ctx) => {
 *   ctx.status = 201
 *   ctx.body = await charge(ctx.request.body)
 * })
 * ```
 */
export function koaIdempotency(options: HttpAdapterOptions): KoaIdempotencyMiddleware {
  if (isContext(options)) {
    throw new TypeError(
      'koaIdempotency(options) makes the middleware: app.use(koaIdempotency({ store })), not app.use(koaIdempotency)',
    )
  }
  const core = HttpIdempotency.from(options)
  return async (ctx, next) => {
    if (!core.covers(ctx.method)) {
      await next()
      return
    }
    // A body parser that ran has drained the stream; one that skipped this content type has not
    // (and @koa/bodyparser then leaves `{}` in ctx.request.body, which is not the body).
    const unread = ctx.req.readable && !ctx.req.readableEnded
    const decision = await core.decide({
      method: ctx.method,
      url: ctx.originalUrl,
      route: ctx.originalUrl.split('?', 1)[0] as string,
      headers: ctx.headers,
      body: unread ? undefined : parsedBody(ctx),
      readBody: unread ? () => readInto(ctx, core.maxRequestBytes) : undefined,
    })
    if (decision.action === 'respond') {
      respondWith(ctx, decision.response)
      return
    }
    if (decision.action === 'pass') {
      await next()
      return
    }
    const { capture } = decision
    // The connection closed before the response was captured: a crash, or a client that left
    // while the handler works. 'close' comes once per response, and follows every complete one.
    ctx.res.once('close', () => {
      if (!capture.done) capture.abandon(new Error('the connection closed before the response was complete'))
    })
    try {
      await next()
    } catch (error) {
      // Koa answers a thrown error itself (500, or the status of an HTTP error): the key is released.
      await capture.abort(error)
      throw error
    }
    await captureKoaResponse(ctx, capture)
  }
}

/** The body a parser left: its raw text where it kept it (the exact bytes), else what it parsed. */
function parsedBody(ctx: KoaIdempotencyContext): unknown {
  const raw = ctx.request.rawBody
  return typeof raw === 'string' || raw instanceof Uint8Array ? raw : ctx.request.body
}

/** Read the body no parser read, and put an unread copy in its place for the parsers and handlers after this one. */
async function readInto(ctx: KoaIdempotencyContext, limit: number): Promise<Uint8Array | undefined> {
  const original = ctx.req
  const bytes = ((await readBody(original, limit)) as Buffer | undefined) ?? EMPTY
  const replay = replayRequest(original, bytes)
  // Koa keeps the request in three places: each must see the copy.
  ctx.req = replay
  ctx.request.req = replay
  ctx.response.req = replay
  if (ctx.request.rawBody === undefined) {
    const text = rawBodyText(bytes)
    if (text !== undefined) ctx.request.rawBody = text
  }
  return bytes.length === 0 ? undefined : bytes
}

const EMPTY = Buffer.alloc(0)

/** `app.use(koaIdempotency)`: Koa then calls it with a context in place of the options. */
function isContext(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false
  const value = options as Record<string, unknown>
  return 'req' in value && 'res' in value && 'app' in value && !('store' in value) && !('idem' in value)
}
