// idem/tracing behind idem/http on a node:http server: a request's `traceparent` is the parent of
// its idem.run span, unless the server is instrumented already (a span of that trace is active).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { context, propagation, SpanKind, trace } from '@opentelemetry/api'
import { afterEach, describe, expect, it } from 'vitest'
import { listening, type RunningApp } from '../../../test/support/http/test-apps.test-helper.js'
import { expectChildOf, recordSpans, testTracer } from '../../../test/support/telemetry/tracing.test-helper.js'
import { until } from '../../../test/support/until.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { withIdempotency } from '../../http/node/node-handler.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemTracing } from './index.js'

const spans = recordSpans()

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'
const TRACEPARENT = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`

type Wrap = (serve: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => typeof serve

describe('idemTracing behind withIdempotency (node:http)', () => {
  let app: RunningApp | undefined
  afterEach(() => app?.close())

  async function start(wrap: Wrap = (serve) => serve) {
    const core = new HttpIdempotency({ idem: new Idempotency({ store: new MemoryStore() }) })
    idemTracing().watch(core)
    const handler = withIdempotency(core, async (_req, res, body) => {
      testTracer().startSpan('handler').end()
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ got: JSON.parse(String(body)) }))
    })
    const serve = wrap(handler)
    app = await listening(createServer((req, res) => void serve(req, res)))
    return app.url
  }

  const post = (url: string, key: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers },
      body: JSON.stringify({ amount: 5 }),
    })

  it("makes the request's traceparent the parent of idem.run", async () => {
    const url = await start()
    const response = await post(url, 'http-1', { traceparent: TRACEPARENT })
    expect(response.status).toBe(201)
    await until('the idem.run span', () => spans.named('idem.run').length === 1)

    const run = spans.one('idem.run')
    expect(run.kind).toBe(SpanKind.INTERNAL)
    expect(run.spanContext().traceId).toBe(CALLER_TRACE)
    expect(run.parentSpanContext).toMatchObject({ traceId: CALLER_TRACE, spanId: CALLER_SPAN, isRemote: true })
    expect(run.attributes).toMatchObject({ 'idem.key': 'http-1', 'idem.outcome': 'executed' })
    expectChildOf(spans.one('idem.execute'), run.spanContext())
    // The handler runs in the adapter's own flow, once the core decided to proceed, not inside
    // the run's function: its spans are not children of idem.execute (they are of the server's span).
    expect(spans.one('handler').parentSpanContext?.spanId).not.toBe(spans.one('idem.execute').spanContext().spanId)
  })

  it('answers a retry with a replayed idem.run in the retry’s own trace', async () => {
    const url = await start()
    await post(url, 'http-2', { traceparent: TRACEPARENT })
    const retryTrace = '0af7651916cd43dd8448eb211c80319c'
    const retry = await post(url, 'http-2', { traceparent: `00-${retryTrace}-b7ad6b7169203331-01` })
    expect(retry.status).toBe(201)
    await until('both idem.run spans', () => spans.named('idem.run').length === 2)
    const replay = spans.named('idem.run')[1]
    expect(replay?.attributes['idem.outcome']).toBe('replayed')
    expect(replay?.parentSpanContext).toMatchObject({ traceId: retryTrace, spanId: 'b7ad6b7169203331' })
  })

  it('joins the active server span instead when it is of the same trace (an instrumented server)', async () => {
    // What an HTTP auto-instrumentation does: a SERVER span, child of the traceparent, made active.
    const url = await start((serve) => (req, res) => {
      const remote = propagation.extract(context.active(), req.headers)
      const span = testTracer().startSpan('POST /orders', { kind: SpanKind.SERVER }, remote)
      return context.with(trace.setSpan(remote, span), () => serve(req, res)).finally(() => span.end())
    })
    await post(url, 'http-3', { traceparent: TRACEPARENT })
    await until('the idem.run span', () => spans.named('idem.run').length === 1)
    const server = spans.one('POST /orders')
    expectChildOf(server, { traceId: CALLER_TRACE, spanId: CALLER_SPAN, traceFlags: 1 })
    expectChildOf(spans.one('idem.run'), server.spanContext())
  })

  it('starts a trace of its own for a request without traceparent', async () => {
    const url = await start()
    await post(url, 'http-4')
    await until('the idem.run span', () => spans.named('idem.run').length === 1)
    expect(spans.one('idem.run').parentSpanContext).toBeUndefined()
  })
})
