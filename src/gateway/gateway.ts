// The gateway: a reverse proxy with per-route idempotency in front of one upstream, built apart
// from binding it (tests and users embed it), with an admin server on a separate port.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { IdempotencyRecord } from '../contract/types.js'
import { Emitter, type Listener } from '../core/emitter.js'
import type { Idempotency } from '../core/idempotency.js'
import { recordId } from '../core/key.js'
import { scopeOf } from '../http/core/request-identity.js'
import type { AnomalyDetectorOptions } from '../telemetry/anomalies/options.js'
import { createAdminHandler } from './admin.js'
import { GatewayAnomalies } from './anomaly-wiring.js'
import { type GatewayAudit, openGatewayAudit } from './audit-wiring.js'
import { GatewayConfigError, loadConfig, validateConfig } from './config/load-config.js'
import type { GatewayConfig, GatewayConfigInput, Mode } from './config/schema.js'
import type { GatewayEvents } from './events.js'
import { GatewayMetrics } from './gateway-metrics.js'
import { buildRoute, GATEWAY_SCOPE, type GatewayRoute } from './gateway-route.js'
import { type OpenStores, openStores } from './open-stores.js'
import type { BreakerSummary, GatewayOperations, KeyLookup, RouteSummary, RouteWatcher } from './operations.js'
import { UpstreamProxy } from './proxy.js'
import { type Generation, handleRequest } from './request-handler.js'
import { RouteTable } from './route-table.js'

export interface GatewayOptions {
  /** The file the configuration came from: what `reload()` (SIGHUP, the admin API) reads again. */
  configFile?: string
  /**
   * Told when the audit log cannot take an event (a full queue with `onFull: fail`) or cannot
   * write (a storage error, retried). Default: a JSON line `{"event":"audit_error",…}` on stderr.
   */
  onAuditError?: (error: Error) => void
  /** The anomaly detector's options (GET /v1/anomalies; docs/observability.md): its defaults unless given. */
  anomalies?: AnomalyDetectorOptions
}

/** A configuration swapped in as a whole; requests in flight finish on the one they started with. */
interface LiveGeneration extends Generation {
  readonly config: GatewayConfig
  readonly stores: OpenStores
  inFlight: number
  retired: boolean
}

/**
 * Build a gateway from a configuration (an object, validated here, or one `loadConfig` read).
 * Nothing is bound until `listen()`.
 */
export async function createGateway(
  config: GatewayConfigInput | GatewayConfig,
  options: GatewayOptions = {},
): Promise<Gateway> {
  const valid = validateConfig(config, options.configFile)
  // The audit log first: a gateway told to keep one does not start without it.
  const audit =
    valid.audit === undefined
      ? undefined
      : await openGatewayAudit(valid.audit, {
          ...(options.configFile === undefined ? {} : { file: options.configFile }),
          ...(options.onAuditError === undefined ? {} : { onError: options.onAuditError }),
        })
  let generation: LiveGeneration
  try {
    generation = await openGeneration(valid)
  } catch (error) {
    await audit?.close()
    throw error
  }
  const gateway = new Gateway(generation, options.configFile, audit, new GatewayAnomalies(options.anomalies))
  try {
    await gateway.ready()
  } catch (error) {
    await gateway.close()
    throw error
  }
  return gateway
}

/** `createGateway` from a YAML or JSON file; `reload()` reads that file again. */
export async function createGatewayFromFile(file: string): Promise<Gateway> {
  return createGateway(await loadConfig(file), { configFile: file })
}

async function openGeneration(config: GatewayConfig, reuse?: LiveGeneration): Promise<LiveGeneration> {
  const sameStores =
    reuse !== undefined &&
    JSON.stringify([reuse.config.stores, reuse.config.breaker]) === JSON.stringify([config.stores, config.breaker])
  const stores = sameStores ? (reuse as LiveGeneration).stores : await openStores(config.stores, config.breaker)
  try {
    // Counters survive a reload for routes that keep their name.
    const routes = config.routes.map((route) =>
      buildRoute(route, config, stores, reuse?.table.byName(route.name)?.stats),
    )
    const sameUpstream =
      reuse !== undefined && JSON.stringify(reuse.config.upstream) === JSON.stringify(config.upstream)
    const proxy = sameUpstream ? (reuse as LiveGeneration).proxy : new UpstreamProxy(config.upstream)
    return {
      config,
      stores,
      proxy,
      table: new RouteTable(routes, (route) => route.name),
      inFlight: 0,
      retired: false,
    }
  } catch (error) {
    if (!sameStores) await stores.close()
    throw error
  }
}

export class Gateway implements GatewayOperations {
  /** The proxy's server, built but not bound: `listen()` binds it, or hand it to your own. */
  readonly server: Server
  /** The admin API's server (undefined without `admin` in the configuration). */
  readonly adminServer: Server | undefined
  readonly configFile: string | undefined
  readonly #events = new Emitter<GatewayEvents>()
  #generation: LiveGeneration
  #reloading: Promise<void> = Promise.resolve()
  #closed = false
  readonly #audit: GatewayAudit | undefined

  readonly #anomalies: GatewayAnomalies

  constructor(
    generation: LiveGeneration,
    configFile: string | undefined,
    audit?: GatewayAudit,
    anomalies = new GatewayAnomalies(),
  ) {
    this.#generation = generation
    this.configFile = configFile
    this.#audit = audit
    audit?.attach((name, listener) => this.on(name, listener))
    this.#anomalies = anomalies
    this.#watchBreakers(generation)
    this.server = createServer({ keepAlive: true }, (req, res) => this.#serve(req, res))
    // Clients keep their connections between requests (HTTP/1.1 keep-alive), longer than the upstream pool does.
    this.server.keepAliveTimeout = 65_000
    const { admin, metrics } = generation.config
    if (admin !== undefined && metrics) {
      this.#metrics = GatewayMetrics.create(this)
      // Awaited by createGateway, which reports the failure; never an unhandled rejection here.
      this.#metrics.catch(noop)
    }
    this.adminServer =
      admin === undefined ? undefined : createServer(createAdminHandler(this, this.#metrics, audit, anomalies))
    // Every route's replays and mismatches, judged against their baseline (GET /v1/anomalies).
    anomalies.attach(this)
  }

  readonly #metrics: Promise<GatewayMetrics> | undefined

  /** Resolves once what the gateway starts besides its servers (its metrics) is ready; rejects when it cannot be. */
  async ready(): Promise<void> {
    await this.#metrics
  }

  /** The configuration in force. */
  get config(): GatewayConfig {
    return this.#generation.config
  }

  get routes(): readonly GatewayRoute[] {
    return this.#generation.table.routes
  }

  on<K extends keyof GatewayEvents>(name: K, listener: Listener<GatewayEvents, K>): () => void {
    return this.#events.on(name, listener)
  }

  /** Bind the proxy (and the admin API) to the configured addresses; port 0 takes a free one. */
  async listen(): Promise<{ url: string; adminUrl: string | undefined }> {
    const { listen, admin } = this.#generation.config
    const url = await bind(this.server, listen.host, listen.port)
    const adminUrl =
      this.adminServer === undefined || admin === undefined
        ? undefined
        : await bind(this.adminServer, admin.listen.host, admin.listen.port)
    return { url, adminUrl }
  }

  /**
   * Swap in a new configuration: `config` (an object), or the config file read again. Applied
   * only when it is valid and everything it names could be opened; otherwise the running one
   * stays and the error (a GatewayConfigError naming file, field and reason) is thrown.
   * `listen` and `admin` cannot change without a restart.
   */
  reload(config?: GatewayConfigInput | GatewayConfig): Promise<GatewayConfig> {
    const next = this.#reloading.then(() => this.#reload(config))
    this.#reloading = next.then(noop, noop)
    return next
  }

  async #reload(input: GatewayConfigInput | GatewayConfig | undefined): Promise<GatewayConfig> {
    const file = input === undefined ? this.configFile : undefined
    try {
      if (input === undefined && file === undefined) {
        throw new GatewayConfigError(undefined, [
          { path: '', message: 'this gateway was built without a config file: give the new configuration' },
        ])
      }
      const config = input === undefined ? await loadConfig(file as string) : validateConfig(input, this.configFile)
      const current = this.#generation
      const fixed: Array<keyof GatewayConfig> = ['listen', 'admin', 'audit']
      for (const field of fixed) {
        if (JSON.stringify(config[field]) !== JSON.stringify(current.config[field])) {
          throw new GatewayConfigError(file ?? this.configFile, [
            { path: field, message: 'cannot change on reload; restart the gateway to apply it' },
          ])
        }
      }
      const generation = await openGeneration(config, current)
      this.#generation = generation
      if (generation.stores !== current.stores) this.#watchBreakers(generation)
      this.#retire(current, generation)
      for (const [watch, watching] of this.#watchers) this.#rewatch(watch, watching)
      this.#events.emit('config_reloaded', { file, routes: config.routes.map((route) => route.name) })
      return config
    } catch (error) {
      this.#events.emit('config_rejected', { file, error: error as Error })
      throw error
    }
  }

  /**
   * Call `watch` for every route's Idempotency now and for every route a reload builds, e.g.
   * `gateway.watchRoutes((idem) => idemTracing().watch(idem))` for spans per route. What `watch`
   * returns is called when a reload replaces the route. Returns a function that stops watching.
   */
  watchRoutes(watch: RouteWatcher): () => void {
    const watching = new Map<Idempotency, (() => void) | undefined>()
    this.#watchers.set(watch, watching)
    this.#rewatch(watch, watching)
    return () => {
      this.#watchers.delete(watch)
      for (const detach of watching.values()) detach?.()
    }
  }

  readonly #watchers = new Map<RouteWatcher, Map<Idempotency, (() => void) | undefined>>()

  #rewatch(watch: RouteWatcher, watching: Map<Idempotency, (() => void) | undefined>): void {
    const live = new Map<Idempotency, string>()
    for (const route of this.routes) if (route.idem !== undefined) live.set(route.idem, route.name)
    for (const [idem, detach] of watching) {
      if (!live.has(idem)) {
        detach?.()
        watching.delete(idem)
      }
    }
    for (const [idem, name] of live) if (!watching.has(idem)) watching.set(idem, watch(idem, name))
  }

  /** Switch a route's mode at once, until the next reload or restart (put it in the file to keep it). */
  setMode(routeName: string, mode: Mode): { route: string; from: Mode; to: Mode } {
    const route = this.#route(routeName)
    if (mode !== 'off' && route.http === undefined) {
      throw new RangeError(
        `Route "${routeName}" has no store: give it one in the configuration before switching it to ${mode}`,
      )
    }
    const change = { route: route.name, from: route.mode, to: mode }
    route.mode = mode
    this.#events.emit('mode_switched', change)
    return change
  }

  /** Each route with its settings and counters. */
  summary(): RouteSummary[] {
    return this.routes.map((route) => ({
      name: route.name,
      mode: route.mode,
      methods: [...route.methods],
      path: route.pattern,
      store: route.storeName,
      stats: route.stats.snapshot(),
    }))
  }

  /** The state of each store's circuit breaker. */
  breakers(): BreakerSummary[] {
    const stores = this.#generation.stores
    return stores.names().map((name) => {
      const { store } = stores.get(name)
      return { store: name, state: store.state, opened: store.opened }
    })
  }

  /** The record of a key as a route stores it, or null. */
  async inspect(lookup: KeyLookup): Promise<{ scope: string; id: string; record: IdempotencyRecord | null }> {
    const { route, scope, id } = this.#locate(lookup)
    const record = await (route.idem as NonNullable<GatewayRoute['idem']>).store.get(id)
    return { scope, id, record }
  }

  /** Remove a key's record so that its next request executes afresh; true when there was one. */
  async purge(lookup: KeyLookup): Promise<{ scope: string; id: string; existed: boolean }> {
    const { route, scope, id } = this.#locate(lookup)
    const existed = await (route.idem as NonNullable<GatewayRoute['idem']>).store.delete(id)
    this.#events.emit('purged', { route: route.name, scope, key: lookup.key, existed })
    return { scope, id, existed }
  }

  #locate(lookup: KeyLookup): { route: GatewayRoute; scope: string; id: string } {
    const route = this.#route(lookup.route)
    if (route.idem === undefined) throw new RangeError(`Route "${route.name}" has no store: it keeps no keys`)
    const methods = [...route.methods]
    const method = lookup.method?.toUpperCase() ?? (methods.length === 1 ? methods[0] : undefined)
    if (method === undefined || !route.methods.has(method)) {
      throw new RangeError(`Route "${route.name}" covers ${methods.join(', ')}: say which method the key was used with`)
    }
    const scope = scopeOf(GATEWAY_SCOPE, lookup.principal, method, route.name)
    return { route, scope, id: recordId(scope, lookup.key) }
  }

  #route(name: string): GatewayRoute {
    const route = this.#generation.table.byName(name)
    if (route === undefined) {
      const names = this.routes.map((r) => r.name)
      throw new RangeError(`No route named "${name}" (routes: ${names.length === 0 ? 'none' : names.join(', ')})`)
    }
    return route
  }

  /** Stop accepting requests, let those in flight finish, then close the upstream pool and the stores. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#reloading
    const generation = this.#generation
    await Promise.all([closeServer(this.server), this.adminServer && closeServer(this.adminServer)])
    // A request whose response has gone reports its decision just after: let it reach the audit log.
    for (let i = 0; i < 100 && generation.inFlight > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    await generation.proxy.close()
    await generation.stores.close()
    this.#anomalies.close()
    // Last: what is queued is written (and a final checkpoint signed) once nothing more can happen.
    await this.#audit?.close()
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const generation = this.#generation
    generation.inFlight++
    handleRequest(generation, req, res, this.#events)
      .catch((error: unknown) => res.destroy(error as Error))
      .finally(() => {
        generation.inFlight--
        if (generation.retired && generation.inFlight === 0) void this.#release(generation)
      })
  }

  /** `old` serves its requests in flight to the end; then what `next` does not reuse is closed. */
  #retire(old: LiveGeneration, next: LiveGeneration): void {
    old.retired = true
    if (old.inFlight === 0) void this.#release(old, next)
  }

  #nextOf = new WeakMap<LiveGeneration, LiveGeneration>()

  async #release(old: LiveGeneration, next: LiveGeneration = this.#generation): Promise<void> {
    if (this.#nextOf.has(old)) return
    this.#nextOf.set(old, next)
    if (old.proxy !== next.proxy) await old.proxy.close().catch(noop)
    if (old.stores !== next.stores) await old.stores.close().catch(noop)
  }

  #watchBreakers(generation: LiveGeneration): void {
    for (const name of generation.stores.names()) {
      generation.stores.get(name).store.onStateChange((state, previous) => {
        this.#events.emit('breaker', { store: name, state, previous })
      })
    }
  }
}

function bind(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address() as AddressInfo
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
      resolve(`http://${shown}:${address.port}`)
    })
  })
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve()
  return new Promise((resolve) => {
    server.close(() => resolve())
    // Idle keep-alive connections would hold close() open until they time out.
    server.closeIdleConnections()
  })
}

function noop(): void {}
