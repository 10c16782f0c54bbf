// The parent a run span gets from the call's origin and the active context.

import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { recordSpans, testTracer } from '../../../test/support/telemetry/tracing.test-helper.js'
import type { CallOrigin } from '../../core/options.js'
import { parentContext } from './parent.js'

recordSpans()

const REMOTE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const REMOTE_SPAN = '00f067aa0ba902b7'

function origin(headers: Record<string, string>): CallOrigin & { reads: number } {
  const counted = {
    reads: 0,
    headers: () => {
      counted.reads++
      return headers
    },
  }
  return counted
}

const withTraceparent = () =>
  origin({ traceparent: `00-${REMOTE_TRACE}-${REMOTE_SPAN}-01`, tracestate: 'vendor=1', other: 'x' })

describe('parentContext', () => {
  it("is the origin's trace context when the active context has no span, its headers read once", () => {
    const from = withTraceparent()
    const parent = parentContext(ROOT_CONTEXT, from)
    expect(trace.getSpanContext(parent)).toMatchObject({ traceId: REMOTE_TRACE, spanId: REMOTE_SPAN, isRemote: true })
    expect(trace.getSpanContext(parent)?.traceState?.get('vendor')).toBe('1')
    expect(from.reads).toBe(1)
  })

  it("is the origin's trace context when the active span is of another trace", () => {
    const span = testTracer().startSpan('unrelated')
    const active = trace.setSpan(context.active(), span)
    expect(trace.getSpanContext(parentContext(active, withTraceparent()))?.spanId).toBe(REMOTE_SPAN)
    span.end()
  })

  it('is the active context when its span is of the same trace (an instrumented server)', () => {
    const remote = trace.setSpanContext(ROOT_CONTEXT, { traceId: REMOTE_TRACE, spanId: REMOTE_SPAN, traceFlags: 1 })
    const server = testTracer().startSpan('server', {}, remote)
    const active = trace.setSpan(ROOT_CONTEXT, server)
    expect(parentContext(active, withTraceparent())).toBe(active)
    server.end()
  })

  it('is the active context without an origin, without headers, or with an invalid traceparent', () => {
    const span = testTracer().startSpan('active')
    const active = trace.setSpan(ROOT_CONTEXT, span)
    expect(parentContext(active, undefined)).toBe(active)
    expect(parentContext(active, {})).toBe(active)
    expect(parentContext(active, origin({}))).toBe(active)
    expect(parentContext(active, origin({ traceparent: 'garbage' }))).toBe(active)
    expect(parentContext(active, origin({ traceparent: `00-${'0'.repeat(32)}-${REMOTE_SPAN}-01` }))).toBe(active)
    span.end()
  })

  it('is the active context when reading the headers throws', () => {
    const broken: CallOrigin = {
      headers: () => {
        throw new Error('cannot read headers')
      },
    }
    expect(parentContext(ROOT_CONTEXT, broken)).toBe(ROOT_CONTEXT)
  })
})
