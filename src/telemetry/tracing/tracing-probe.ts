// The probe idem/tracing attaches to an Idempotency: a span around each call (`idem.run`,
// `idem.transaction`), one around each execution of the function (`idem.execute`), each made the
// active context for what runs inside it, and one per store call (`idem.store.<operation>`),
// made after the fact from its timing. Without an SDK, or when a span is not sampled, it does
// next to nothing: no attribute is set on a span that does not record, and no store span or
// execute span is started under one.

import {
  type Context,
  context,
  isSpanContextValid,
  type Span,
  SpanKind,
  type SpanOptions,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { CallOrigin } from '../../core/options.js'
import type { ExecutionInfo, Probe, RunInfo, StoreOperation } from '../../core/probe.js'
import { Attr, EXECUTE_SPAN, RUN_SPAN, STORE_SPANS, TRANSACTION_SPAN } from './names.js'
import { fail, rejected, settled, thrownByFunction } from './outcome.js'
import { parentContext } from './parent.js'

const INTERNAL: SpanOptions = { kind: SpanKind.INTERNAL }
const CONSUMER: SpanOptions = { kind: SpanKind.CONSUMER }

/** Run spans not ended yet: an execution sets its attempt and takeover on the one it runs under. */
const openRuns = new WeakSet<Span>()

/**
 * The probe of one `idemTracing`; without `storeSpans` it has no `storeCall`, so store calls are
 * not even timed. `enabled` says whether an SDK is behind the tracer now.
 */
export function tracingProbe(tracer: Tracer, storeSpans: boolean, enabled: () => boolean): Probe {
  const probe: Probe = {
    // Lets the core skip the hooks (and their clock reads) altogether while no SDK is behind the tracer.
    enabled,
    aroundRun<R>(info: RunInfo, body: () => Promise<R>): Promise<R> {
      // No SDK behind the tracer: no span would record, and none is started (nor is the
      // execution's or a store call's, which only start under a recording span).
      if (!enabled()) return body()
      const active = context.active()
      const parent = parentContext(active, info.origin)
      const name = info.kind === 'transaction' ? TRANSACTION_SPAN : RUN_SPAN
      const span = tracer.startSpan(name, isDelivery(info.origin) ? CONSUMER : INTERNAL, parent)
      if (!span.isRecording()) return within(parent, active, span, body)
      span.setAttribute(Attr.SCOPE, info.scope)
      span.setAttribute(Attr.KEY, info.key)
      span.setAttribute(Attr.RECORD_ID, info.id)
      openRuns.add(span)
      return context.with(trace.setSpan(parent, span), body).then(
        (result) => {
          settled(span, result)
          endRun(span)
          return result
        },
        (error: unknown) => {
          rejected(span, error)
          endRun(span)
          throw error
        },
      )
    },

    aroundExecution<R>(info: ExecutionInfo, call: () => Promise<R>): Promise<R> {
      const active = context.active()
      const run = trace.getSpan(active)
      if (run === undefined || !run.isRecording()) return call()
      if (openRuns.has(run)) {
        run.setAttribute(Attr.ATTEMPT, info.attempt)
        run.setAttribute(Attr.TAKEOVER, info.recovered)
      }
      const span = tracer.startSpan(EXECUTE_SPAN, INTERNAL, active)
      if (!span.isRecording()) return within(active, active, span, call).catch(rethrowFromFunction)
      span.setAttribute(Attr.ATTEMPT, info.attempt)
      span.setAttribute(Attr.TAKEOVER, info.recovered)
      return context.with(trace.setSpan(active, span), call).then(
        (value) => {
          span.end()
          return value
        },
        (error: unknown) => {
          thrownByFunction(error)
          fail(span, error)
          span.end()
          throw error
        },
      )
    },
  }
  if (storeSpans) {
    probe.storeCall = (operation: StoreOperation, startedAt: number, durationMs: number, error: unknown): void => {
      // Called in the async flow of the call: its run or execute span is the active one.
      const active = context.active()
      const parent = trace.getSpan(active)
      if (parent === undefined || !parent.isRecording()) return
      // performance.now() values: the SDK takes a number below the current performance.now() for one.
      const span = tracer.startSpan(
        STORE_SPANS[operation] ?? `idem.store.${operation}`,
        { kind: SpanKind.INTERNAL, startTime: startedAt },
        active,
      )
      if (error !== undefined) fail(span, error)
      span.end(Math.min(startedAt + durationMs, performance.now()))
    }
  }
  return probe
}

/**
 * Runs `body` under a span that does not record. One with a context of its own (an SDK that did
 * not sample it) is still made the parent of what runs inside, so that the trace stays whole and
 * the decision not to sample carries on; unless the parent is a span of the same trace and the
 * same decision (an unsampled request's), under which nothing inside can tell the difference. The
 * no-op tracer's span costs nothing.
 */
function within<R>(parent: Context, active: Context, span: Span, body: () => Promise<R>): Promise<R> {
  const own = span.spanContext()
  if (isSpanContextValid(own)) {
    const outer = trace.getSpanContext(parent)
    if (outer === undefined || outer.traceId !== own.traceId || outer.traceFlags !== own.traceFlags) {
      return context.with(trace.setSpan(parent, span), body)
    }
  }
  return parent === active ? body() : context.with(parent, body)
}

function rethrowFromFunction(error: unknown): never {
  thrownByFunction(error)
  throw error
}

function endRun(span: Span): void {
  openRuns.delete(span)
  span.end()
}

/** A consumer's delivery (acknowledged to a broker), as opposed to an HTTP request. */
function isDelivery(origin: CallOrigin | undefined): boolean {
  return typeof (origin as { ack?: unknown } | undefined)?.ack === 'function'
}
