// The parent of a run span: the trace context the call's origin carries (a consumer continues the
// producer's trace, an HTTP request joins the caller's `traceparent`), unless the active context
// already holds a span of that same trace (an auto-instrumented HTTP server's), or else the
// active context.

import { type Context, isSpanContextValid, propagation, type TextMapGetter, trace } from '@opentelemetry/api'
import type { CallOrigin } from '../../core/options.js'

type Headers = Readonly<Record<string, string | undefined>>

// The origin being read by the propagator, and its headers once read: `extract` is synchronous,
// so one slot serves every call. The headers are read only if a propagator asks (none does
// without an SDK), and only once however many fields it reads.
let reading: CallOrigin | undefined
let read: Headers | undefined

function headersOf(origin: CallOrigin): Headers {
  if (read === undefined || reading !== origin) {
    reading = origin
    read = origin.headers?.() ?? {}
  }
  return read
}

const originGetter: TextMapGetter<CallOrigin> = {
  keys: (origin) => Object.keys(headersOf(origin)),
  get: (origin, key) => headersOf(origin)[key],
}

/** The context a run span of a call from `origin` starts in, given the `active` one. */
export function parentContext(active: Context, origin: CallOrigin | undefined): Context {
  if (origin?.headers === undefined) return active
  let extracted: Context
  try {
    extracted = propagation.extract(active, origin, originGetter)
  } catch {
    // Headers that cannot be read (or a propagator that fails) never fail the call.
    return active
  } finally {
    reading = undefined
    read = undefined
  }
  // Nothing found (or no propagator registered): the context comes back as it was.
  if (extracted === active) return active
  const remote = trace.getSpanContext(extracted)
  if (remote === undefined || !isSpanContextValid(remote)) return active
  const current = trace.getSpanContext(active)
  if (current !== undefined && current.traceId === remote.traceId && isSpanContextValid(current)) return active
  return extracted
}
