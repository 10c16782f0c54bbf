// idem/express: the Express middleware. Express itself is the application's; this loads none of it.

export { type HttpAdapterOptions, HttpIdempotency, type HttpIdempotencyOptions } from '../index.js'
export { expressIdempotency } from './express-middleware.js'
