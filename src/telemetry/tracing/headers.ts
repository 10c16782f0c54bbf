// `traceHeaders`: the active trace context as message headers, for a producer to publish with a
// message (or an outbox row to carry), so that the consumer's spans continue the producer's trace.

import { context, propagation } from '@opentelemetry/api'

/**
 * A copy of `headers` with the active context injected by the registered propagator: W3C
 * `traceparent` and `tracestate` with the usual SDK setup. Without an SDK (or outside any span)
 * the copy is all there is. Pass it as the `headers` of a published message or an outbox row.
 *
 * @example
 * ```ts
 * await tracer.startActiveSpan('order.place', async (span) => {
 *   await producer.publish({ id, payload, headers: traceHeaders({ tenant: 'acme' }) })
 *   span.end()
 * })
 * ```
 */
export function traceHeaders(headers?: Readonly<Record<string, string>>): Record<string, string> {
  const carrier: Record<string, string> = { ...headers }
  propagation.inject(context.active(), carrier)
  return carrier
}
