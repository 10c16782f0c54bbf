// What the admin API and the metrics see of a running gateway: its state and what an operator
// may do to it. An interface apart from the Gateway class, so that neither imports the other.

import type { IdempotencyRecord } from '../contract/types.js'
import type { Listener } from '../core/emitter.js'
import type { Idempotency } from '../core/idempotency.js'
import type { GatewayConfig, GatewayConfigInput, Mode } from './config/schema.js'
import type { GatewayEvents } from './events.js'
import type { GatewayRoute } from './gateway-route.js'
import type { RouteStatsSnapshot } from './stats.js'

export interface RouteSummary {
  name: string
  mode: Mode
  methods: string[]
  path: string
  store: string | undefined
  stats: RouteStatsSnapshot
}

export interface KeyLookup {
  route: string
  key: string
  /** The principal the key belongs to (as the route resolves it: the header value, or the JWT's sub). Default: anonymous. */
  principal?: string
  /** Default: the route's only method; required when it has several. */
  method?: string
}

/** Told of each route's Idempotency (and its name); returns a function that stops watching it, or undefined. */
export type RouteWatcher = (idem: Idempotency, route: string) => (() => void) | undefined

export interface BreakerSummary {
  store: string
  state: 'closed' | 'open' | 'half_open'
  opened: number
}

export interface GatewayOperations {
  readonly config: GatewayConfig
  readonly configFile: string | undefined
  readonly routes: readonly GatewayRoute[]
  on<K extends keyof GatewayEvents>(name: K, listener: Listener<GatewayEvents, K>): () => void
  summary(): RouteSummary[]
  breakers(): BreakerSummary[]
  setMode(routeName: string, mode: Mode): { route: string; from: Mode; to: Mode }
  inspect(lookup: KeyLookup): Promise<{ scope: string; id: string; record: IdempotencyRecord | null }>
  purge(lookup: KeyLookup): Promise<{ scope: string; id: string; existed: boolean }>
  watchRoutes(watch: RouteWatcher): () => void
  reload(config?: GatewayConfigInput | GatewayConfig): Promise<GatewayConfig>
}
