// One route of the running configuration: its settings with the defaults filled in, and what
// serves it (its Idempotency over its store's breaker, its HTTP core, principal, rate limiter,
// signature check), built once per configuration so that a request only reads them.

import { AsyncLocalStorage } from 'node:async_hooks'
import { Idempotency } from '../core/idempotency.js'
import { HttpIdempotency } from '../http/core/http-idempotency.js'
import type { HttpRequest } from '../http/core/types.js'
import type { GatewayConfig, KeySource, Mode, RouteConfig, SignatureConfig } from './config/schema.js'
import type { OpenStore, OpenStores } from './open-stores.js'
import { type PrincipalResult, principalResolver } from './principal.js'
import { createRateLimiter, type RouteRateLimiter } from './rate-limiter.js'
import { compilePath, type Matchable, type PathMatcher } from './route-table.js'
import { type NonceStore, storeNonces } from './signature.js'
import { RouteStats } from './stats.js'

/** The prefix of every scope the gateway writes: `gateway|<principal hash>|<METHOD> <route name>`. */
export const GATEWAY_SCOPE = 'gateway'

/**
 * Whether the request being decided went on unprotected: the request handler runs a fail-open
 * route's decision inside `failOpenMark.run(mark, …)`, and the route's store_error listener marks
 * it (per request, however many run at once), for the decision event (`failedOpen`).
 */
export const failOpenMark = new AsyncLocalStorage<{ failedOpen: boolean }>()

/** A request as the gateway hands it to the HTTP core: with the principal it resolved. */
export interface GatewayRequest extends HttpRequest {
  principal: string | undefined
}

export interface GatewayRoute extends Matchable {
  readonly name: string
  /** Switched through the admin API; read once per request. */
  mode: Mode
  readonly pattern: string
  readonly methods: ReadonlySet<string>
  readonly matches: PathMatcher
  readonly storeName: string | undefined
  readonly failOpen: boolean
  /** Key from a header (the HTTP core reads it) or from a body field (the gateway reads it into that header). */
  readonly keyBodyPath: readonly string[] | undefined
  /** Body fields that make up the fingerprint (undefined: the whole body). */
  readonly fingerprintBody: ReadonlyArray<readonly string[]> | undefined
  readonly principal: (headers: HttpRequest['headers']) => Promise<PrincipalResult> | PrincipalResult
  /** Undefined for a route whose mode is `off` and that names no store. */
  readonly http: HttpIdempotency | undefined
  readonly idem: Idempotency | undefined
  readonly rateLimiter: RouteRateLimiter | undefined
  readonly signature: { config: SignatureConfig; nonces: NonceStore } | undefined
  readonly stats: RouteStats
}

/** The header a body key is carried in to the HTTP core: never one a client could send through the proxy. */
const BODY_KEY_HEADER = 'x-idem-gateway-body-key'

/** `stats`: the counters of the route of the same name in the configuration this one replaces. */
export function buildRoute(
  route: RouteConfig,
  config: GatewayConfig,
  stores: OpenStores,
  stats: RouteStats = new RouteStats(),
): GatewayRoute {
  const defaults = config.defaults
  const mode = route.mode ?? defaults.mode
  const storeName = route.store ?? defaults.store
  const store: OpenStore | undefined = storeName === undefined ? undefined : stores.get(storeName)
  const key: KeySource = route.key ?? defaults.key
  const failOpen = (route.onStoreFailure ?? defaults.onStoreFailure) === 'open'
  const ttl = route.ttl ?? defaults.ttl
  const lease = route.lease ?? defaults.lease

  let idem: Idempotency | undefined
  let http: HttpIdempotency | undefined
  if (store !== undefined) {
    idem = new Idempotency({ store: store.store, ttl, lease, failOpen })
    // A fail-open route forwards unprotected when the store fails: counted, never silent, and the
    // request marked (its decision event says so, and the audit log records it as failed_open).
    if (failOpen) {
      idem.on('store_error', (event) => {
        if (!event.failOpen) return
        stats.failedOpen++
        const mark = failOpenMark.getStore()
        if (mark !== undefined) mark.failedOpen = true
      })
    }
    http = new HttpIdempotency({
      idem,
      header: 'header' in key ? key.header : BODY_KEY_HEADER,
      methods: route.match.methods,
      required: route.required ?? defaults.required,
      principal: (request) => (request as GatewayRequest).principal,
      scope: GATEWAY_SCOPE,
      fingerprintHeaders: route.fingerprint?.headers ?? [],
      // ttl, lease and failOpen are the route's Idempotency's own defaults: a request that
      // overrides nothing takes the resolved policy as it is, without comparing it per call.
    })
  }

  let rateLimiter: RouteRateLimiter | undefined
  if (route.rateLimit !== undefined) {
    const limitStore = stores.get((route.rateLimit.store ?? storeName) as string)
    rateLimiter = createRateLimiter(route.name, route.rateLimit, limitStore.backend)
  }
  const signature =
    route.signature === undefined || store === undefined
      ? undefined
      : { config: route.signature, nonces: storeNonces(store.store) }

  return {
    name: route.name,
    mode,
    pattern: route.match.path,
    methods: new Set(route.match.methods),
    matches: compilePath(route.match.path),
    storeName,
    failOpen,
    keyBodyPath: 'body' in key ? key.body.split('.') : undefined,
    fingerprintBody: route.fingerprint?.body?.map((path) => path.split('.')),
    principal: principalResolver(route.principal ?? defaults.principal),
    http,
    idem,
    rateLimiter,
    signature,
    stats,
  }
}

/** The value at `path` in a parsed JSON body, or undefined. */
export function fieldAt(body: unknown, path: readonly string[]): unknown {
  let value = body
  for (const part of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** A key taken from a body field, as a Structured Field string the HTTP core parses back. */
export function bodyKeyHeader(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined
  const text = String(value)
  return { [BODY_KEY_HEADER]: `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` }
}

export { BODY_KEY_HEADER }
