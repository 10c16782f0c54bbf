// idem/tracing: OpenTelemetry spans for runs, executions and store calls, through
// @opentelemetry/api (an optional peer dependency); a no-op while no SDK is registered.

export { traceHeaders } from './headers.js'
export {
  Attr as TracingAttributes,
  EXECUTE_SPAN,
  REPLAY_EVENT,
  RUN_SPAN,
  STORE_SPANS,
  TRANSACTION_SPAN,
} from './names.js'
export { type IdemTracing, type IdemTracingOptions, idemTracing, type TracingTarget } from './tracing.js'
