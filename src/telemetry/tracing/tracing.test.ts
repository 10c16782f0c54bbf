// idem/tracing on MemoryStore, with an SDK recording in memory: which spans a call makes, their
// parents, attributes, events and status.

import { readFileSync } from 'node:fs'
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { describe, expect, it } from 'vitest'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import {
  expectChildOf,
  idemAttributes,
  millis,
  recordSpans,
  testTracer,
} from '../../../test/support/telemetry/tracing.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { ErrorCode, type IdempotencyError } from '../../errors.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemTracing, traceHeaders } from './index.js'

const spans = recordSpans()

function traced(options: ConstructorParameters<typeof Idempotency>[0] = { store: new MemoryStore() }) {
  const idem = new Idempotency(options)
  const tracing = idemTracing()
  tracing.watch(idem)
  return { idem, tracing }
}

const exceptions = (span: ReadableSpan) => span.events.filter((event) => event.name === 'exception')

describe('idemTracing on run()', () => {
  it('traces a new key: idem.run, with idem.store.begin, idem.execute and idem.store.complete as its children', async () => {
    const { idem } = traced({ store: new MemoryStore(), scope: 'orders' })
    const before = Date.now()
    const out = await idem.run({ key: 'order-1', payload: { amount: 5 } }, () => ({ charged: 5 }))
    const after = Date.now()
    expect(out).toEqual({ status: 'executed', value: { charged: 5 } })

    const run = spans.one('idem.run')
    const begin = spans.one('idem.store.begin')
    const execute = spans.one('idem.execute')
    const complete = spans.one('idem.store.complete')
    expect(spans.all()).toHaveLength(4)
    expect(run.parentSpanContext).toBeUndefined()
    expect(run.kind).toBe(SpanKind.INTERNAL)
    for (const child of [begin, execute, complete]) expectChildOf(child, run.spanContext())
    expect(idemAttributes(run)).toEqual({
      'idem.scope': 'orders',
      'idem.key': 'order-1',
      'idem.record_id': idem.recordId('order-1'),
      'idem.outcome': 'executed',
      'idem.attempt': 1,
      'idem.takeover': false,
    })
    expect(idemAttributes(execute)).toEqual({ 'idem.attempt': 1, 'idem.takeover': false })
    expect(execute.kind).toBe(SpanKind.INTERNAL)
    for (const span of [run, begin, execute, complete]) {
      expect(span.status.code).toBe(SpanStatusCode.UNSET)
      expect(span.events).toEqual([])
    }
    // Store spans are made from performance.now() timings: they land in the wall-clock time of the
    // call (a millisecond either way for the SDK's clock correction), in order.
    for (const span of [begin, complete]) {
      expect(millis(span.startTime)).toBeGreaterThanOrEqual(before - 2)
      expect(millis(span.endTime)).toBeLessThanOrEqual(after + 2)
      expect(millis(span.endTime)).toBeGreaterThanOrEqual(millis(span.startTime))
    }
    expect(millis(begin.endTime)).toBeLessThanOrEqual(millis(complete.startTime) + 1)
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))
    expect(run.instrumentationScope).toMatchObject({ name: 'idem', version })
  })

  it('traces a duplicate as idem.run with outcome replayed and an idem.replay event, and no execution', async () => {
    const { idem } = traced()
    await idem.run({ key: 'dup' }, () => 'first')
    const firstRun = spans.one('idem.run')
    const out = await idem.run({ key: 'dup' }, () => 'second')
    expect(out).toEqual({ status: 'replayed', value: 'first' })

    const replay = spans.named('idem.run').find((span) => span !== firstRun) as ReadableSpan
    expect(replay.spanContext().traceId).not.toBe(firstRun.spanContext().traceId)
    expect(idemAttributes(replay)).toEqual({
      'idem.scope': 'default',
      'idem.key': 'dup',
      'idem.record_id': idem.recordId('dup'),
      'idem.outcome': 'replayed',
    })
    expect(replay.events.map((event) => event.name)).toEqual(['idem.replay'])
    expect(replay.status.code).toBe(SpanStatusCode.UNSET)
    expect(spans.childrenOf(replay)).toEqual(['idem.store.begin'])
    expect(spans.named('idem.execute')).toHaveLength(1)
  })

  it('makes a span opened inside the function a child of idem.execute', async () => {
    const { idem } = traced()
    await idem.run({ key: 'nested' }, () =>
      testTracer().startActiveSpan('charge-card', (span) => {
        span.end()
        return 'charged'
      }),
    )
    expectChildOf(spans.one('charge-card'), spans.one('idem.execute').spanContext())
  })

  it('parents idem.run on the active span of the caller', async () => {
    const { idem } = traced()
    await testTracer().startActiveSpan('request', async (span) => {
      await idem.run({ key: 'in-request' }, () => 'done')
      span.end()
    })
    expectChildOf(spans.one('idem.run'), spans.one('request').spanContext())
  })

  it('says FINGERPRINT_MISMATCH without an ERROR status: a rejection is an answer', async () => {
    const { idem } = traced()
    await idem.run({ key: 'reused', payload: { amount: 1 } }, () => 'one')
    const error = await idem.run({ key: 'reused', payload: { amount: 2 } }, () => 'two').catch((e: unknown) => e)
    expect((error as IdempotencyError).code).toBe(ErrorCode.FINGERPRINT_MISMATCH)

    const rejected = spans.named('idem.run')[1] as ReadableSpan
    expect(rejected.attributes['idem.outcome']).toBe('FINGERPRINT_MISMATCH')
    expect(rejected.status.code).toBe(SpanStatusCode.UNSET)
    expect(exceptions(rejected)).toEqual([])
  })

  it('says IN_PROGRESS without an ERROR status, while the first call still runs', async () => {
    const { idem } = traced()
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    const first = idem.run({ key: 'busy' }, async () => {
      started()
      await held
      return 'first'
    })
    await running
    const error = await idem.run({ key: 'busy' }, () => 'second').catch((e: unknown) => e)
    expect((error as IdempotencyError).code).toBe(ErrorCode.IN_PROGRESS)
    const rejected = spans.one('idem.run')
    expect(idemAttributes(rejected)).toMatchObject({ 'idem.outcome': 'IN_PROGRESS', 'idem.key': 'busy' })
    expect(rejected.status.code).toBe(SpanStatusCode.UNSET)
    expect(exceptions(rejected)).toEqual([])
    release()
    await first
    expect(spans.named('idem.run').map((span) => span.attributes['idem.outcome'])).toEqual(['IN_PROGRESS', 'executed'])
  })

  it("gives the function's error an ERROR status, on idem.execute and idem.run, and traces the release", async () => {
    const { idem } = traced()
    const error = await idem
      .run({ key: 'failing' }, () => {
        throw new Error('card declined')
      })
      .catch((e: unknown) => e)
    expect((error as Error).message).toBe('card declined')

    const run = spans.one('idem.run')
    const execute = spans.one('idem.execute')
    expect(run.attributes['idem.outcome']).toBe('error')
    for (const span of [run, execute]) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'card declined' })
      expect(exceptions(span).map((event) => event.attributes?.['exception.message'])).toEqual(['card declined'])
    }
    expect(spans.childrenOf(run)).toEqual(['idem.execute', 'idem.store.begin', 'idem.store.release'])
  })

  it("says `error` when the function throws an Idem error of a nested call, not that call's code", async () => {
    const { idem } = traced()
    await idem.run({ key: 'inner', payload: 1 }, () => 'inner')
    const error = await idem
      .run({ key: 'outer' }, () => idem.run({ key: 'inner', payload: 2 }, () => 'never'))
      .catch((e: unknown) => e)
    expect((error as IdempotencyError).code).toBe(ErrorCode.FINGERPRINT_MISMATCH)
    const outer = spans.named('idem.run').find((span) => span.attributes['idem.key'] === 'outer') as ReadableSpan
    const inner = spans.named('idem.run').filter((span) => span.attributes['idem.key'] === 'inner')[1] as ReadableSpan
    expect(outer.attributes['idem.outcome']).toBe('error')
    expect(outer.status.code).toBe(SpanStatusCode.ERROR)
    expect(inner.attributes['idem.outcome']).toBe('FINGERPRINT_MISMATCH')
    expect(inner.status.code).toBe(SpanStatusCode.UNSET)
    const outerExecute = spans
      .named('idem.execute')
      .find((span) => span.parentSpanContext?.spanId === outer.spanContext().spanId) as ReadableSpan
    expectChildOf(inner, outerExecute.spanContext())
  })

  it('replays a stored isFinal error as outcome replayed, without an ERROR status', async () => {
    const { idem } = traced({ store: new MemoryStore(), isFinal: () => true })
    const fail = () => {
      throw new Error('declined for good')
    }
    await idem.run({ key: 'final' }, fail).catch(() => {})
    const error = await idem.run({ key: 'final' }, fail).catch((e: unknown) => e)
    expect((error as Error).message).toBe('declined for good')
    const [first, duplicate] = spans.named('idem.run') as [ReadableSpan, ReadableSpan]
    expect(first.attributes['idem.outcome']).toBe('error')
    expect(first.status.code).toBe(SpanStatusCode.ERROR)
    expect(duplicate.attributes['idem.outcome']).toBe('replayed')
    expect(duplicate.events.map((event) => event.name)).toEqual(['idem.replay'])
    expect(duplicate.status.code).toBe(SpanStatusCode.UNSET)
  })

  it('says STORE_UNAVAILABLE with an ERROR status, and the failed store call too', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin')
    const { idem } = traced({ store })
    const error = await idem.run({ key: 'down' }, () => 'never').catch((e: unknown) => e)
    expect((error as IdempotencyError).code).toBe(ErrorCode.STORE_UNAVAILABLE)
    const run = spans.one('idem.run')
    const begin = spans.one('idem.store.begin')
    expect(run.attributes['idem.outcome']).toBe('STORE_UNAVAILABLE')
    expect(run.status.code).toBe(SpanStatusCode.ERROR)
    expectChildOf(begin, run.spanContext())
    expect(begin.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'connect ECONNREFUSED 127.0.0.1:6399 (during begin)',
    })
  })

  it('says failed_open when the store is down and failOpen ran the function anyway', async () => {
    const store = new FaultyStore(new MemoryStore())
    store.fail('begin', 1)
    const { idem } = traced({ store })
    const out = await idem.run({ key: 'open', failOpen: true }, () => 'ran anyway')
    expect(out).toEqual({ status: 'executed', value: 'ran anyway', failedOpen: true })
    const run = spans.one('idem.run')
    expect(idemAttributes(run)).toMatchObject({ 'idem.outcome': 'failed_open', 'idem.attempt': 1 })
    expect(run.status.code).toBe(SpanStatusCode.UNSET)
    expectChildOf(spans.one('idem.execute'), run.spanContext())
  })

  it('marks a takeover of a lapsed lease: idem.attempt 2 and idem.takeover true', async () => {
    let now = Date.now()
    const store = new MemoryStore({ clock: () => now })
    const { idem } = traced({ store })
    // A worker claimed the key and died: its lease lapses.
    await store.begin(idem.recordId('lapsed'), 'fp', 1000, 60_000)
    now += 5000
    await idem.run({ key: 'lapsed', fingerprint: 'fp' }, () => 'recovered')
    expect(idemAttributes(spans.one('idem.run'))).toMatchObject({
      'idem.outcome': 'executed',
      'idem.attempt': 2,
      'idem.takeover': true,
    })
    expect(idemAttributes(spans.one('idem.execute'))).toEqual({ 'idem.attempt': 2, 'idem.takeover': true })
  })

  it('leaves the store spans out with storeSpans: false', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing({ storeSpans: false }).watch(idem)
    await idem.run({ key: 'no-store-spans' }, () => 'v')
    expect(spans.all().map((span) => span.name)).toEqual(['idem.execute', 'idem.run'])
  })

  it('uses the tracer it is given', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    idemTracing({ tracer: trace.getTracer('my-service', '2.0.0') }).watch(idem)
    await idem.run({ key: 'own-tracer' }, () => 'v')
    expect(spans.one('idem.run').instrumentationScope).toMatchObject({ name: 'my-service', version: '2.0.0' })
  })
})

describe('idemTracing on runMany()', () => {
  it('traces each member as an idem.run with its idem.execute, the claim as one idem.store.beginMany', async () => {
    const { idem } = traced()
    const results = await testTracer().startActiveSpan('batch', async (batch) => {
      const settled = await Promise.all(
        idem.runMany([{ key: 'm-1' }, { key: 'm-2' }], (ctx, index) => `${ctx.key}:${index}`),
      )
      batch.end()
      return settled
    })
    expect(results).toEqual([
      { status: 'executed', value: 'm-1:0' },
      { status: 'executed', value: 'm-2:1' },
    ])
    const batch = spans.one('batch')
    const runs = spans.named('idem.run')
    expect(runs.map((span) => span.attributes['idem.key']).sort()).toEqual(['m-1', 'm-2'])
    for (const run of runs) {
      expectChildOf(run, batch.spanContext())
      expect(run.attributes['idem.outcome']).toBe('executed')
      expect(spans.childrenOf(run).filter((name) => name === 'idem.execute')).toHaveLength(1)
    }
    // The claim is made for the whole batch before any member's span: in the caller's context.
    expectChildOf(spans.one('idem.store.beginMany'), batch.spanContext())
    // The completions are gathered into one call, made in the flow of the first member that completed.
    const completeMany = spans.one('idem.store.completeMany')
    expect(runs.some((run) => completeMany.parentSpanContext?.spanId === run.spanContext().spanId)).toBe(true)
  })
})

describe('idemTracing.watch', () => {
  it('takes an HttpIdempotency (its idem), ignores a second watch, and stops on the returned function', async () => {
    const idem = new Idempotency({ store: new MemoryStore() })
    const http = new HttpIdempotency({ idem })
    const tracing = idemTracing()
    const stop = tracing.watch(http)
    expect(tracing.watch(idem)).toBe(stop)
    await idem.run({ key: 'watched' }, () => 'v')
    expect(spans.named('idem.run')).toHaveLength(1)
    stop()
    await idem.run({ key: 'unwatched' }, () => 'v')
    expect(spans.named('idem.run')).toHaveLength(1)
  })

  it('stops everything on close(), and refuses to watch after it', async () => {
    const { idem, tracing } = traced()
    tracing.close()
    await idem.run({ key: 'closed' }, () => 'v')
    expect(spans.all()).toEqual([])
    expect(() => tracing.watch(idem)).toThrow('watch() after close()')
  })

  it('refuses what it cannot trace, and bad options', () => {
    expect(() => idemTracing().watch({} as Idempotency)).toThrow(TypeError)
    expect(() => idemTracing({ storeSpans: 'yes' as unknown as boolean })).toThrow(TypeError)
    expect(() => idemTracing({ tracer: {} as never })).toThrow(TypeError)
  })
})

describe('traceHeaders', () => {
  it('injects the active span as traceparent into a copy of the headers', () => {
    const given = { tenant: 'acme' }
    const headers = testTracer().startActiveSpan('publish', (span) => {
      span.end()
      return traceHeaders(given)
    })
    const { traceId, spanId } = spans.one('publish').spanContext()
    expect(headers).toEqual({ tenant: 'acme', traceparent: `00-${traceId}-${spanId}-01` })
    expect(given).toEqual({ tenant: 'acme' })
  })

  it('is a plain copy outside any span', () => {
    expect(context.active()).toBeDefined()
    expect(traceHeaders()).toEqual({})
    expect(traceHeaders({ a: 'b' })).toEqual({ a: 'b' })
  })
})
