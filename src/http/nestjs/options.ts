// The options of idem/nestjs: the module's (the HTTP options, made Nest-aware) and a route's.

import type { ExecutionContext } from '@nestjs/common'
import type { HttpIdempotency } from '../core/http-idempotency.js'
import type { HttpIdempotencyOptions } from '../core/options.js'
import type { HttpRequest } from '../core/types.js'

/**
 * Who is asking, from the request as the core sees it and from Nest's context: e.g.
 * `(_request, context) => context.switchToHttp().getRequest().user?.id` after an auth guard.
 * Whatever it returns is hashed before it is stored; undefined means anonymous.
 */
export type NestPrincipal = (request: HttpRequest, context: ExecutionContext) => string | undefined

/** The module's options: the HTTP options (`{ store }` or `{ idem }`, and the rest). */
export interface IdemModuleOptions extends Omit<HttpIdempotencyOptions, 'principal' | 'idempotency'> {
  /** Who is asking. Default: the Authorization header (hashed). */
  principal?: NestPrincipal
}

/** What the module runs on: its options, or an `HttpIdempotency` shared with other adapters. */
export type IdemModuleConfig = IdemModuleOptions | HttpIdempotency

/** How the module is registered, next to its options. */
export interface IdemModuleRegistration {
  /** Register the module globally, so that every module can inject `Idempotency` and use `@Idempotent()`. Default false. */
  isGlobal?: boolean
  /**
   * Apply the HTTP interceptor to every route (as `APP_INTERCEPTOR`): `@Idempotent()` then only
   * adjusts a route, and `@Idempotent(false)` exempts one. Default false: only decorated routes.
   */
  allRoutes?: boolean
}

/** A route's own options, over the module's. */
export interface IdempotentOptions
  extends Pick<
    IdemModuleOptions,
    | 'methods'
    | 'required'
    | 'scope'
    | 'ttl'
    | 'lease'
    | 'onInProgress'
    | 'waitTimeout'
    | 'fingerprintHeaders'
    | 'replayHeaders'
    | 'maxResponseBytes'
    | 'abandonAfter'
    | 'failOpen'
    | 'principal'
  > {
  /**
   * Fingerprint only these dotted paths of a parsed JSON body (e.g. `['amount', 'order.id']`), so
   * that a retry whose other fields differ (a client timestamp) is still the same request. The
   * method, the target and the `fingerprintHeaders` stay part of the fingerprint. Default: the whole body.
   */
  fingerprintFields?: readonly string[]
}
