// idem/hono: the Hono middleware. Hono itself is the application's; this loads none of it.

export { type HttpAdapterOptions, HttpIdempotency, type HttpIdempotencyOptions } from '../index.js'
export { honoIdempotency } from './hono-middleware.js'
