// `idemTracing()`: OpenTelemetry spans for the Idempotency instances it watches, through
// @opentelemetry/api only (an optional peer dependency). Without a registered SDK the API's
// tracer is a no-op, and so is this.

import { type Tracer, trace } from '@opentelemetry/api'
import type { Idempotency } from '../../core/idempotency.js'
import type { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { type Target, targetOf } from '../core/targets.js'
import { globalSdkRegistered } from './sdk-presence.js'
import { tracingProbe } from './tracing-probe.js'
import { IDEM_VERSION } from './version.js'

export interface IdemTracingOptions {
  /** The tracer to start spans with. Default: `trace.getTracer('idem', version)`, the global provider's. */
  tracer?: Tracer
  /** A span per store call (`idem.store.begin`, `…complete`, …). Default true. */
  storeSpans?: boolean
}

/** What `watch()` takes: an Idempotency, or the HTTP core (whose `idem` is watched). */
export type TracingTarget = Idempotency | HttpIdempotency

export interface IdemTracing {
  /**
   * Trace every call of `target` (an `Idempotency`, or an `HttpIdempotency`: its `idem`). A
   * consumer runs through the `idem` it was given: watch that. Watching the same one again
   * changes nothing. Returns a function that stops watching it.
   */
  watch(target: TracingTarget): () => void
  /** Stop watching everything; `watch` then throws. */
  close(): void
}

/**
 * OpenTelemetry spans for Idem: `idem.run` (or `idem.transaction`) around each call, a child
 * `idem.execute` around the function, and `idem.store.<operation>` for each store call. A call
 * from a consumer (its delivery) or an HTTP request continues the trace context its headers
 * carry (`traceparent`): publish with `traceHeaders()` to link a consumer to its producer.
 *
 * Attributes: `idem.scope`, `idem.key`, `idem.record_id`, `idem.outcome` (executed, replayed,
 * failed_open, an error code such as IN_PROGRESS, or `error` when the function threw),
 * `idem.attempt`, `idem.takeover`. Never a payload or a result.
 *
 * @example
 * ```ts
 * import { idemTracing } from 'idem/tracing'
 *
 * const tracing = idemTracing()
 * tracing.watch(idem)
 * ```
 */
export function idemTracing(options: IdemTracingOptions = {}): IdemTracing {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('idemTracing takes an options object: { tracer?, storeSpans? }')
  }
  const { tracer = trace.getTracer('idem', IDEM_VERSION), storeSpans = true } = options
  // The default tracer is the global provider's: when no SDK is behind it, a call is not traced.
  const enabled = options.tracer === undefined ? globalSdkRegistered : always
  if (tracer === null || typeof tracer !== 'object' || typeof tracer.startSpan !== 'function') {
    throw new TypeError('idemTracing: tracer must be an OpenTelemetry Tracer (trace.getTracer(name))')
  }
  if (typeof storeSpans !== 'boolean')
    throw new TypeError(`idemTracing: storeSpans must be a boolean, got ${storeSpans}`)
  const probe = tracingProbe(tracer, storeSpans, enabled)
  const watched = new Map<Idempotency, () => void>()
  let closed = false

  return {
    watch(target) {
      if (closed) throw new Error('idemTracing: watch() after close()')
      const idem = idempotencyOf(target)
      let stop = watched.get(idem)
      if (stop === undefined) {
        const detach = idem.instrument(probe)
        stop = () => {
          if (watched.get(idem) !== stop) return
          watched.delete(idem)
          detach()
        }
        watched.set(idem, stop)
      }
      return stop
    },
    close() {
      closed = true
      for (const stop of [...watched.values()]) stop()
    },
  }
}

function idempotencyOf(target: unknown): Idempotency {
  let found: Target | undefined
  try {
    found = targetOf(target, 'idemTracing().watch')
  } catch {}
  if (found?.kind === 'idempotency') return found.idem
  if (found?.kind === 'http') return found.http.idem
  throw new TypeError(
    'idemTracing().watch takes an Idempotency or an HttpIdempotency (for a consumer, watch the idem it runs through)',
  )
}

const always = (): boolean => true
