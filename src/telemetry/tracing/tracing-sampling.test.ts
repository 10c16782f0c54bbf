// idem/tracing under a sampler that drops spans: nothing recorded, and the decision carries on to
// what runs inside the call (a trace is sampled whole or not at all).

import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SamplingDecision,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { describe, expect, it } from 'vitest'
import { recordSpans, testTracer } from '../../../test/support/telemetry/tracing.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemTracing, traceHeaders } from './index.js'

const spans = recordSpans()

const REMOTE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'

describe('idemTracing when spans are not sampled', () => {
  it('records nothing for a call whose origin says "not sampled", and hands that on to the function', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing().watch(idem)
    const origin = { headers: () => ({ traceparent: `00-${REMOTE_TRACE}-00f067aa0ba902b7-00` }) }
    let inside: Record<string, string> = {}
    const out = await idem.run({ key: 'unsampled', origin }, () => {
      testTracer().startSpan('user-span').end()
      inside = traceHeaders()
      return 'v'
    })
    expect(out).toEqual({ status: 'executed', value: 'v' })
    expect(spans.all()).toEqual([])
    // The function runs in the origin's unsampled trace: what it sends on stays in it, unsampled.
    expect(inside.traceparent).toMatch(new RegExp(`^00-${REMOTE_TRACE}-[0-9a-f]{16}-00$`))
  })

  it('hands an unsampled root on to the function: its own spans are not sampled apart from it', async () => {
    const exporter = new InMemorySpanExporter()
    // Roots sampled at random, children as their parent: what a ratio sampler does.
    let roots = 0
    const provider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({
        root: {
          shouldSample: () => ({
            decision: roots++ % 2 === 0 ? SamplingDecision.NOT_RECORD : SamplingDecision.RECORD_AND_SAMPLED,
          }),
          toString: () => 'alternate',
        },
      }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    })
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing({ tracer: provider.getTracer('idem') }).watch(idem)
    const tracer = provider.getTracer('user')
    await idem.run({ key: 'dropped-root' }, () => tracer.startSpan('user-span').end())
    // The run's root was dropped (the first decision); the user's span, a child of it, is dropped too.
    expect(exporter.getFinishedSpans()).toEqual([])
    await provider.shutdown()
  })

  it('records nothing with an AlwaysOff sampler, and changes no result', async () => {
    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({
      sampler: new AlwaysOffSampler(),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    })
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing({ tracer: provider.getTracer('off') }).watch(idem)
    expect(await idem.run({ key: 'off' }, () => 'v')).toEqual({ status: 'executed', value: 'v' })
    expect(await idem.run({ key: 'off' }, () => 'w')).toEqual({ status: 'replayed', value: 'v' })
    await expect(
      idem.run({ key: 'off-fail' }, () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(exporter.getFinishedSpans()).toEqual([])
    expect(spans.all()).toEqual([])
    await provider.shutdown()
  })
})
