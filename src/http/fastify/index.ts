// idem/fastify: the Fastify plugin. Fastify itself is the application's; this loads none of it.

export { type HttpAdapterOptions, HttpIdempotency, type HttpIdempotencyOptions } from '../index.js'
export { type FastifyIdempotencyOptions, fastifyIdempotency } from './fastify-plugin.js'
