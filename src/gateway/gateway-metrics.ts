// The gateway's Prometheus metrics, served by the admin API: the library's own families for every
// route's Idempotency (idem_requests_total, store and function durations…, see idem/metrics) and
// the gateway's, read from the routes' counters at scrape time (nothing on the request path).
// prom-client is an optional peer: loaded on the first scrape.

import type { GatewayOperations } from './operations.js'
import { ROUTE_OUTCOMES } from './stats.js'

const BREAKER_STATE = { closed: 0, half_open: 1, open: 2 } as const

export class GatewayMetrics {
  readonly contentType: string
  readonly #registry: { metrics(): Promise<string> }

  private constructor(registry: { metrics(): Promise<string>; contentType: string }) {
    this.#registry = registry
    this.contentType = registry.contentType
  }

  static async create(gateway: GatewayOperations): Promise<GatewayMetrics> {
    let promClient: typeof import('prom-client')
    try {
      promClient = await import('prom-client')
    } catch {
      throw new Error('Gateway metrics need prom-client: npm install prom-client (or set metrics: false)')
    }
    const { idemMetrics } = await import('../telemetry/metrics/idem-metrics.js')
    const { collectedCounter, collectedGauge } = await import('../telemetry/metrics/scrape-metrics.js')
    const registry = new promClient.Registry()
    const library = idemMetrics({ registry })
    const metrics = new GatewayMetrics(registry)
    // Every route's Idempotency, from its first request, including the routes a reload builds.
    gateway.watchRoutes((idem) => library.watch(idem))
    const summaries = () => gateway.summary()

    collectedCounter(
      registry,
      'idem_gateway_requests_total',
      'Requests through each route, by outcome',
      ['route', 'outcome'],
      () =>
        summaries().flatMap((route) =>
          ROUTE_OUTCOMES.map((outcome) => [{ route: route.name, outcome }, route.stats.outcomes[outcome]] as const),
        ),
    )
    collectedCounter(
      registry,
      'idem_gateway_rejections_total',
      'Requests answered with a problem instead of forwarded, by code',
      ['route', 'code'],
      () =>
        summaries().flatMap((route) =>
          Object.entries(route.stats.rejected).map(([code, n]) => [{ route: route.name, code }, n] as const),
        ),
    )
    collectedCounter(
      registry,
      'idem_gateway_observed_total',
      'In observe mode: requests enforce would have replayed or rejected (forwarded anyway), by code for rejections',
      ['route', 'decision', 'code'],
      () =>
        summaries().flatMap((route) => [
          [{ route: route.name, decision: 'replayed', code: '' }, route.stats.observed.replayed] as const,
          ...Object.entries(route.stats.observed.rejectedByCode).map(
            ([code, n]) => [{ route: route.name, decision: 'rejected', code }, n] as const,
          ),
        ]),
    )
    collectedCounter(
      registry,
      'idem_gateway_failed_open_total',
      'Requests forwarded unprotected because the store failed (fail-open routes)',
      ['route'],
      () => summaries().map((route) => [{ route: route.name }, route.stats.failedOpen] as const),
    )
    collectedCounter(
      registry,
      'idem_gateway_upstream_responses_total',
      'Upstream answers by status class, and upstream failures (timeout, unavailable, broken)',
      ['route', 'class'],
      () =>
        summaries().flatMap((route) =>
          Object.entries(route.stats.upstream).map(([cls, n]) => [{ route: route.name, class: cls }, n ?? 0] as const),
        ),
    )
    collectedGauge(
      registry,
      'idem_gateway_route_mode',
      'The mode each route is in (1 for the active mode)',
      ['route', 'mode'],
      () => summaries().map((route) => [{ route: route.name, mode: route.mode }, 1] as const),
    )
    collectedGauge(
      registry,
      'idem_gateway_breaker_state',
      "Each store's circuit breaker: 0 closed, 1 half-open, 2 open",
      ['store'],
      () =>
        gateway
          .breakers()
          .map((b) => [{ store: b.store }, BREAKER_STATE[b.state as keyof typeof BREAKER_STATE] ?? 0] as const),
    )
    collectedCounter(
      registry,
      'idem_gateway_breaker_opened_total',
      "Times each store's circuit breaker opened",
      ['store'],
      () => gateway.breakers().map((b) => [{ store: b.store }, b.opened] as const),
    )
    return metrics
  }

  scrape(): Promise<string> {
    return this.#registry.metrics()
  }
}
