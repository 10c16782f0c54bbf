// idem/gateway: the idempotency gateway, a reverse proxy with per-route Idempotency-Key policies
// in front of any upstream (`idem gateway --config idem.yaml`, or embedded with createGateway).

export type { GatewayAuditStatus } from './audit-wiring.js'
export { GatewayConfigError, loadConfig, parseConfig, redactConfig, validateConfig } from './config/load-config.js'
export type {
  AuditConfig,
  GatewayConfig,
  GatewayConfigInput,
  Mode,
  RateLimitConfig,
  RouteConfig,
  SignatureConfig,
  StoreConfig,
} from './config/schema.js'
export { MODES } from './config/schema.js'
export type { GatewayDecisionEvent, GatewayEvents } from './events.js'
export {
  createGateway,
  createGatewayFromFile,
  Gateway,
  type GatewayOptions,
} from './gateway.js'
export type { BreakerSummary, GatewayOperations, KeyLookup, RouteSummary, RouteWatcher } from './operations.js'
export { GatewayProblem } from './problems.js'
export { signRequest } from './signature.js'
export type { RouteOutcome, RouteStatsSnapshot } from './stats.js'
