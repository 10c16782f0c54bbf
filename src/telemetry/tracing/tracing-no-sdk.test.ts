// idem/tracing without an OpenTelemetry SDK: watching changes nothing a caller can see, reads no
// headers, makes no span; and a tracing made before the SDK is registered records once it is.

import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Idempotency } from '../../core/idempotency.js'
import type { CallOrigin } from '../../core/options.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemTracing, traceHeaders } from './index.js'

describe('idemTracing without an SDK', () => {
  beforeAll(() => {
    trace.disable()
    context.disable()
    propagation.disable()
  })
  afterAll(() => {
    trace.disable()
    context.disable()
    propagation.disable()
  })

  it('runs, replays and fails exactly as without it, and reads no headers', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const tracing = idemTracing()
    tracing.watch(idem)
    let headersRead = 0
    const origin: CallOrigin = {
      headers: () => {
        headersRead++
        return { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }
      },
    }
    let activeSpan: unknown = 'unset'
    const first = await idem.run({ key: 'k', payload: { n: 1 }, origin }, () => {
      activeSpan = trace.getActiveSpan()
      return { n: 1 }
    })
    expect(first).toEqual({ status: 'executed', value: { n: 1 } })
    expect(activeSpan).toBeUndefined()
    expect(await idem.run({ key: 'k', payload: { n: 1 }, origin }, () => ({ n: 2 }))).toEqual({
      status: 'replayed',
      value: { n: 1 },
    })
    const failure = new Error('boom')
    await expect(
      idem.run({ key: 'failing', origin }, () => {
        throw failure
      }),
    ).rejects.toBe(failure)
    const many = await Promise.all(idem.runMany([{ key: 'a' }, { key: 'b' }], (ctx) => ctx.key))
    expect(many).toEqual([
      { status: 'executed', value: 'a' },
      { status: 'executed', value: 'b' },
    ])
    expect(headersRead).toBe(0)
    expect(traceHeaders({ a: 'b' })).toEqual({ a: 'b' })
    tracing.close()
  })

  it('records once an SDK is registered after it was made (the API tracer delegates late)', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing().watch(idem)
    await idem.run({ key: 'before' }, () => 'v')

    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    expect(exporter.getFinishedSpans()).toEqual([])
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(provider)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    try {
      await idem.run({ key: 'after' }, () => 'v')
      expect(exporter.getFinishedSpans().map((span) => span.name)).toEqual([
        'idem.store.begin',
        'idem.execute',
        'idem.store.complete',
        'idem.run',
      ])
    } finally {
      await provider.shutdown()
    }
  })
})
