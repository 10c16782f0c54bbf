// idem/koa: the Koa middleware (Koa 2 and 3). Koa itself is the application's; this loads none of it.

export { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
export type { HttpIdempotencyOptions } from '../core/options.js'
export { koaIdempotency } from './koa-middleware.js'
export type { KoaIdempotencyContext, KoaIdempotencyMiddleware, KoaNext } from './koa-types.js'
