// idem/metrics on the HTTP core: `idem_http_requests_total` by route, method, outcome and status,
// and the runs of its `idem` under a scope label without the principal, counted once however the
// core is watched.

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { samplesOf, sumOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import type { HttpRequest } from '../../http/core/types.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemMetrics } from './index.js'

function post(key: string | undefined, body: unknown, who = 'alice'): HttpRequest {
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${who}` }
  if (key !== undefined) headers['idempotency-key'] = key
  return { method: 'POST', url: '/orders', route: '/orders', headers, body }
}

/** Decides, and when the handler is to run, answers with `status`. */
async function send(http: HttpIdempotency, request: HttpRequest, status = 201): Promise<void> {
  const decision = await http.decide(request)
  if (decision.action === 'proceed') {
    decision.capture.write('{"id":1}')
    await decision.capture.end(status, [['content-type', 'application/json']])
  }
}

describe('idem_http_requests_total', () => {
  it('counts each request subject to idempotency by route, method, outcome and status', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    metrics.watch(http)
    metrics.watch(http.idem) // already watched through http: counted once

    await send(http, post('k1', { amount: 1 }))
    await send(http, post('k1', { amount: 1 }))
    await send(http, post('k1', { amount: 1 }))
    await send(http, post('k1', { amount: 2 }))
    await send(http, post('k2', { amount: 1 }), 503)
    await send(http, post(undefined, { amount: 1 }))
    await send(http, post('"unclosed', { amount: 1 }))
    await send(http, { ...post('k3', {}), method: 'GET' })

    const route = { route: '/orders', method: 'POST' }
    expect(await samplesOf(registry, 'idem_http_requests_total')).toEqual([
      { labels: { ...route, outcome: 'executed', status: '201' }, value: 1 },
      { labels: { ...route, outcome: 'replayed', status: '201' }, value: 2 },
      { labels: { ...route, outcome: 'rejected', status: '422' }, value: 1 },
      { labels: { ...route, outcome: 'released', status: '503' }, value: 1 },
      { labels: { ...route, outcome: 'no_key', status: 'none' }, value: 1 },
      { labels: { ...route, outcome: 'rejected', status: '400' }, value: 1 },
    ])
    const scope = 'http|POST /orders'
    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope, outcome: 'executed' }, value: 1 },
      { labels: { scope, outcome: 'replayed' }, value: 2 },
      { labels: { scope, outcome: 'mismatch' }, value: 1 },
      { labels: { scope, outcome: 'released' }, value: 1 },
    ])
  })

  it('gives every principal of a route one scope label, and never the principal or the key', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    metrics.watch(http)
    for (let i = 0; i < 500; i++) await send(http, post(`key-${i}`, { i }, `user-${i}`))
    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope: 'http|POST /orders', outcome: 'executed' }, value: 500 },
    ])
    expect(await sumOf(registry, 'idem_function_duration_seconds_count', { scope: 'http|POST /orders' })).toBe(500)
    const text = await registry.metrics()
    expect(text).not.toMatch(/user-|key-|alice|Bearer/)
  })

  it('stops counting the core and its idem once the watch stops, unless the idem is watched on its own', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    const stopHttp = metrics.watch(http)
    const stopIdem = metrics.watch(http.idem)
    await send(http, post('a', {}))
    stopHttp()
    await send(http, post('b', {}))
    expect(await sumOf(registry, 'idem_http_requests_total')).toBe(1)
    expect(await sumOf(registry, 'idem_requests_total', { outcome: 'executed' })).toBe(2)
    stopIdem()
    await send(http, post('c', {}))
    expect(await sumOf(registry, 'idem_requests_total', { outcome: 'executed' })).toBe(2)
  })
})
