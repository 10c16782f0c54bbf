// idem/fastify: Idempotency-Key for Fastify 5. preHandler decides (the body is parsed by then),
// onSend captures the response and holds it until the key is stored or released.

import { PassThrough, Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { warnDeprecated } from '../../contract/deprecation.js'
import { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
import type { ResponseCapture } from '../core/response-capture.js'
import { headerPairs, setHeaderValues } from '../core/stored-response.js'
import type { HttpResponse } from '../core/types.js'

/**
 * Plugin options: the HTTP options, or an `HttpIdempotency` shared between adapters, as every
 * adapter takes. `{ core }` is the former way to share one (deprecated).
 */
export type FastifyIdempotencyOptions =
  | HttpAdapterOptions
  | { /** @deprecated Pass the HttpIdempotency itself. */ core: HttpIdempotency }

function coreOf(options: FastifyIdempotencyOptions): HttpIdempotency {
  if (!(options instanceof HttpIdempotency) && 'core' in options && options.core instanceof HttpIdempotency) {
    warnDeprecated(
      'fastifyIdempotency option `{ core }`',
      'the HttpIdempotency itself: app.register(fastifyIdempotency, http)',
    )
    return options.core
  }
  return HttpIdempotency.from(options as HttpAdapterOptions)
}

const plugin: FastifyPluginAsync<FastifyIdempotencyOptions> = async (fastify, options) => {
  const core = coreOf(options)
  // Each request's capture, in a field every request is built with (a decorator, under a symbol
  // of this registration): no WeakMap, whose entries the garbage collector traces as ephemerons.
  const kCapture = Symbol('idem capture')
  fastify.decorateRequest(kCapture, null)
  const captureOf = (request: FastifyRequest) => (request as unknown as Captured)[kCapture] ?? undefined

  // Callback-style hooks: an async hook costs a promise and microtask turns on every request.
  fastify.addHook('preHandler', (request, reply, done) => {
    if (!core.covers(request.method)) return done()
    core
      .decide({
        method: request.method,
        url: request.url,
        route: request.routeOptions.url ?? request.url.split('?', 1)[0] ?? '/',
        headers: request.headers,
        body: request.body,
      })
      .then((decision) => {
        if (decision.action === 'respond') {
          // A reply sent from a callback hook ends the request there: done() is not called.
          try {
            send(reply, decision.response)
          } catch (error) {
            done(error as Error)
          }
          return
        }
        if (decision.action === 'proceed') watch(request, reply, decision.capture)
        done()
      }, done)
  })

  function watch(request: FastifyRequest, reply: FastifyReply, capture: ResponseCapture): void {
    ;(request as unknown as Captured)[kCapture] = capture
    // The connection closed before onSend: a crash, or a client that left while the handler works.
    // 'close' comes once per response: on() spares once()'s wrapper and its removal.
    reply.raw.on('close', () => {
      // 'close' also follows every complete response: only then is there nothing to do.
      if (!capture.done) capture.abandon(new Error('the connection closed before the response'))
    })
  }

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const capture = captureOf(request)
    if (capture === undefined) return done(null, payload)
    const status = reply.statusCode
    const headers = headerPairs(reply.getHeaders())
    if (payload instanceof Readable) return done(null, tee(payload, capture, status, headers))
    if (typeof payload === 'string' || payload instanceof Uint8Array) capture.write(payload)
    // end() never rejects: it resolves once the key is stored or released.
    capture.end(status, headers).then(() => done(null, payload))
  })

  // A response finished without onSend (a hijacked reply): nothing was captured, release the key.
  fastify.addHook('onResponse', (request, _reply, done) => {
    const capture = captureOf(request)
    // Every captured response ends here: the error (and its stack) only for one that bypassed onSend.
    if (capture === undefined || capture.done) return done()
    capture.abort(new Error('the response bypassed onSend')).then(() => done())
  })
}

type Captured = Record<symbol, ResponseCapture | null>

// Hooks apply to the routes of the application that registers the plugin, not only to its own
// encapsulated context: the effect of the fastify-plugin wrapper, without depending on it.
Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'idem' })

/**
 * Idempotency-Key for Fastify 5, as a plugin: register it with the HTTP options (`{ store }` or
 * `{ idem }`, and the rest) or with an `HttpIdempotency` shared between adapters. It applies to the
 * whole application, like a `fastify-plugin` plugin.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { MemoryStore } from 'idem'
 * import { fastifyIdempotency } from 'idem/fastify'
 *
 * const app = Fastify()
 * await app.register(fastifyIdempotency, { store: new MemoryStore(), required: true })
 * app.post('/payments', async (request, reply) => reply.code(201).send(await charge(request.body)))
 * ```
 */
export const fastifyIdempotency = plugin

function send(reply: FastifyReply, response: HttpResponse): FastifyReply {
  reply.code(response.status)
  setHeaderValues(response.headers, (name, value) => reply.header(name, value))
  return reply.send(Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength))
}

/** A streamed body: passed on as it comes and captured up to the limit; its end waits for the store. */
function tee(source: Readable, capture: ResponseCapture, status: number, headers: Array<[string, string]>): Readable {
  const out = new PassThrough()
  source.on('data', (chunk: Buffer | string) => capture.write(chunk))
  source.once('end', () => void capture.end(status, headers).then(() => out.end()))
  source.once('error', (error) => void capture.abort(error).then(() => out.destroy(error)))
  source.pipe(out, { end: false })
  return out
}
