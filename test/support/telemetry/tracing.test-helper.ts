// An OpenTelemetry SDK for the tests of idem/tracing: a BasicTracerProvider recording into an
// InMemorySpanExporter, the AsyncLocalStorage context manager and the W3C propagator, registered
// globally for one test file (and unregistered after it), and ways to find spans by name.

import { type Attributes, context, propagation, type SpanContext, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, expect } from 'vitest'

export interface RecordedSpans {
  /** Every span ended since the test began, in the order they ended. */
  all(): ReadableSpan[]
  /** The spans named `name`. */
  named(name: string): ReadableSpan[]
  /** The one span named `name` (fails the test unless there is exactly one). */
  one(name: string): ReadableSpan
  /** The names of the spans whose parent is `parent`, sorted. */
  childrenOf(parent: ReadableSpan): string[]
}

/** Registers the SDK around the tests of this file; each test starts with no span recorded. */
export function recordSpans(): RecordedSpans {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const contextManager = new AsyncLocalStorageContextManager()
  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable())
    trace.setGlobalTracerProvider(provider)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  })
  beforeEach(() => exporter.reset())
  afterAll(async () => {
    await provider.shutdown()
    trace.disable()
    context.disable()
    propagation.disable()
  })
  const all = () => exporter.getFinishedSpans()
  const named = (name: string) => all().filter((span) => span.name === name)
  return {
    all,
    named,
    one(name) {
      const found = named(name)
      expect(
        found.map((span) => span.name),
        `exactly one ${name} span`,
      ).toEqual([name])
      return found[0] as ReadableSpan
    },
    childrenOf(parent) {
      return all()
        .filter((span) => isChildOf(span, parent.spanContext()))
        .map((span) => span.name)
        .sort()
    },
  }
}

/** True when `span`'s parent is `parent` (same trace, parent span id). */
export function isChildOf(span: ReadableSpan, parent: SpanContext): boolean {
  return span.spanContext().traceId === parent.traceId && span.parentSpanContext?.spanId === parent.spanId
}

/** Expect `span` to be a child of `parent`: the same trace id and the parent's span id. */
export function expectChildOf(span: ReadableSpan, parent: SpanContext): void {
  expect({ traceId: span.spanContext().traceId, parentSpanId: span.parentSpanContext?.spanId }).toEqual({
    traceId: parent.traceId,
    parentSpanId: parent.spanId,
  })
}

/** The attributes idem/tracing sets, without those of other instrumentations. */
export function idemAttributes(span: ReadableSpan): Attributes {
  return Object.fromEntries(Object.entries(span.attributes).filter(([name]) => name.startsWith('idem.')))
}

/** A span's start or end as epoch milliseconds. */
export function millis([seconds, nanos]: [number, number]): number {
  return seconds * 1000 + nanos / 1e6
}

/** A tracer of the test itself, for the spans a "user" opens. */
export const testTracer = () => trace.getTracer('idem-test')
