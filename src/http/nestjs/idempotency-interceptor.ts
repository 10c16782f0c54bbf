// The HTTP interceptor: the same decision as every adapter (pass, answer, or run the handler with
// its response captured), taken in Nest's pipeline after guards, before pipes and the handler.

import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  RequestMethod,
} from '@nestjs/common'
import { Reflector } from '@nestjs/core'
import { NEVER, Observable, type Subscription } from 'rxjs'
import { selectFields } from '../../core/fingerprint.js'
import { HttpIdempotency } from '../core/http-idempotency.js'
import type { Decision, HttpRequest } from '../core/types.js'
import type { IdemModuleConfig, IdemModuleOptions, IdempotentOptions, NestPrincipal } from './options.js'
import { type Platform, platformOf } from './platform.js'
import { IDEM_HTTP, IDEM_MODULE_OPTIONS, IDEMPOTENT_METADATA } from './tokens.js'

/** Nest's metadata key for a route's method (`@Post()` …), from @nestjs/common's constants. */
const METHOD_METADATA = 'method'
/** Where the request handed to the core carries Nest's context, for a principal that needs it. */
const kContext = Symbol('idem nest context')

type WithContext = HttpRequest & { [kContext]?: ExecutionContext }

/** What a route runs with: its core (the module's, or one of its own over the same `idem`), or none. */
interface Route {
  core: HttpIdempotency | undefined
  fingerprintFields: readonly string[] | undefined
}

/** Requests an interceptor took on: a second one on the same request (global and per route) passes. */
const taken = new WeakSet<object>()

/**
 * The HTTP interceptor behind `@Idempotent()`, on Nest's Express and Fastify platforms alike.
 * A retry of a completed key gets the stored response byte for byte; a problem (400, 409, 422,
 * 503…) is answered as `application/problem+json`; neither reaches the handler. Otherwise the
 * handler runs and the response Nest sends for it (a thrown HttpException's included) is stored:
 * 2xx-4xx are kept, a 5xx releases the key.
 *
 * A replayed or refused request ends here: interceptors outside this one (registered before it)
 * get no value for it, and Nest sends nothing more. Register it as the outermost interceptor.
 */
export class IdempotencyInterceptor implements NestInterceptor {
  readonly #http: HttpIdempotency
  readonly #reflector: Reflector
  readonly #options: IdemModuleOptions
  readonly #routes = new WeakMap<object, Route>()

  constructor(http: HttpIdempotency, reflector: Reflector, config: IdemModuleConfig) {
    this.#http = http
    this.#reflector = reflector
    // Over a shared HttpIdempotency, whose options are its own, a route's core starts from the defaults.
    this.#options = config instanceof HttpIdempotency ? {} : config
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle()
    const { core, fingerprintFields } = this.#route(context)
    const http = context.switchToHttp()
    const request: { method: string } = http.getRequest()
    if (core === undefined || !core.covers(request.method)) return next.handle()
    const platform = platformOf(request)
    const raw = platform.raw(request)
    if (taken.has(raw)) return next.handle()
    taken.add(raw)
    const described: WithContext = platform.describe(request, core.maxRequestBytes)
    // Only a principal of the module's or the route's reads it: see withContext().
    described[kContext] = context
    const response: unknown = http.getResponse()
    if (fingerprintFields === undefined) return this.#carryOut(core, platform, described, response, next)
    // The core fingerprints `body` only: the chosen fields of the parsed body stand in for it.
    const { readBody } = described
    const read = described.body === undefined && readBody !== undefined ? readBody() : undefined
    return from(read, undefined, (body) => {
      const whole = read === undefined ? described.body : body
      described.body = isParsed(whole) ? selectFields(whole, fingerprintFields) : whole
      delete described.readBody
      return this.#carryOut(core, platform, described, response, next)
    })
  }

  #carryOut(
    core: HttpIdempotency,
    platform: Platform,
    request: HttpRequest,
    response: unknown,
    next: CallHandler,
  ): Observable<unknown> {
    return from(core.decide(request), dropped, (decision) => {
      if (decision.action === 'respond') {
        platform.send(response, decision.response)
        // Answered: Nest must send nothing more. An Observable that never emits is how an
        // interceptor ends a request it answered itself; it holds no resource and nothing
        // references it once the request is over.
        return NEVER
      }
      if (decision.action === 'proceed') platform.capture(response, decision.capture)
      return next.handle()
    })
  }

  /** The route's settings, worked out on its first request: its metadata does not change. */
  #route(context: ExecutionContext): Route {
    const handler = context.getHandler()
    let route = this.#routes.get(handler)
    if (route === undefined) {
      route = this.#settle(context)
      this.#routes.set(handler, route)
    }
    return route
  }

  #settle(context: ExecutionContext): Route {
    const handler = context.getHandler()
    const onHandler = this.#reflector.get<IdempotentOptions | false | undefined>(IDEMPOTENT_METADATA, handler)
    const onClass = this.#reflector.get<IdempotentOptions | false | undefined>(IDEMPOTENT_METADATA, context.getClass())
    if (onHandler === false || (onHandler === undefined && onClass === false)) {
      return { core: undefined, fingerprintFields: undefined }
    }
    const own: IdempotentOptions = { ...(onClass || {}), ...(onHandler ?? {}) }
    // A route decorated itself covers its own method, whatever it is (a PUT, a DELETE).
    if (onHandler !== undefined && onHandler.methods === undefined) {
      const method = RequestMethod[this.#reflector.get<RequestMethod>(METHOD_METADATA, handler)]
      if (method !== undefined && method !== 'ALL') own.methods = [method]
    }
    const { fingerprintFields, ...http } = own
    const names = Object.keys(http)
    const covered = (http.methods ?? []).every((method) => this.#http.covers(method.toUpperCase()))
    // Nothing of its own but methods the module covers anyway: the module's core serves it.
    if (names.length === 0 || (names.length === 1 && names[0] === 'methods' && covered)) {
      return { core: this.#http, fingerprintFields }
    }
    // A core of the route's own over the module's `idem`: one store, one policy, one set of `idem`
    // events (the HTTP `response` event is per core: see the module's documentation).
    const { store: _store, idem: _idem, ...base } = this.#options
    const principal = http.principal ?? base.principal
    const core = new HttpIdempotency({
      ...base,
      ...http,
      idem: this.#http.idem,
      principal: principal === undefined ? undefined : withContext(principal),
    })
    return { core, fingerprintFields }
  }
}

Injectable()(IdempotencyInterceptor)
Inject(IDEM_HTTP)(IdempotencyInterceptor, undefined, 0)
Inject(Reflector)(IdempotencyInterceptor, undefined, 1)
Inject(IDEM_MODULE_OPTIONS)(IdempotencyInterceptor, undefined, 2)

/** The core's principal (it sees the request only) over a Nest principal that also gets the context. */
export function withContext(principal: NestPrincipal): (request: HttpRequest) => string | undefined {
  return (request) => principal(request, (request as WithContext)[kContext] as ExecutionContext)
}

/** A body parser's value (an object or an array), not bytes nor text: fields can be picked from it. */
function isParsed(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !(body instanceof Uint8Array)
}

/**
 * A decision nobody waits for any more (an interceptor outside this one gave up on the request,
 * e.g. a timeout, before the store answered): a claimed key is released, or it would stay claimed
 * by a handler that never runs.
 */
function dropped(decision: Decision): void {
  if (decision.action === 'proceed')
    void decision.capture.abort(new Error('the request was dropped before its handler ran'))
}

/**
 * `value.then(andThen)` as an Observable: the continuation's Observable once `value` settles, a
 * rejection (or a throw of `andThen`) as its error; `onDropped` gets a value that settles after
 * the subscriber left. Nest subscribes to it once.
 */
function from<T>(
  value: Promise<T> | undefined,
  onDropped: ((value: T) => void) | undefined,
  andThen: (value: T) => Observable<unknown>,
): Observable<unknown> {
  return new Observable<unknown>((subscriber) => {
    let inner: Subscription | undefined
    let closed = false
    Promise.resolve(value)
      .then((settled) => {
        if (closed) onDropped?.(settled as T)
        else inner = andThen(settled as T).subscribe(subscriber)
      })
      .catch((error: unknown) => {
        if (!closed) subscriber.error(error)
      })
    return () => {
      closed = true
      inner?.unsubscribe()
    }
  })
}
