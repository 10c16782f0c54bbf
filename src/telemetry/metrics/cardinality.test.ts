// Bounded labels: however many scopes, routes, consumers or relays, a label has at most
// `maxLabelValues` values plus `other`, and what is past the cap is still counted (under `other`).

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { labelValues, sumOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemMetrics } from './index.js'

describe('label cardinality', () => {
  it('keeps 1,000 scopes to 10 scope labels and other, counting every call', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry, maxLabelValues: 10 })
    const idem = new Idempotency({ store: new MemoryStore() })
    metrics.watch(idem)
    for (let i = 0; i < 1000; i++) await idem.run({ key: 'k', scope: `tenant-${i}` }, () => i)

    const scopes = await labelValues(registry, 'idem_requests_total', 'scope')
    expect(scopes).toHaveLength(11)
    expect(scopes).toContain('other')
    expect(await sumOf(registry, 'idem_requests_total', { scope: 'other' })).toBe(990)
    expect(await sumOf(registry, 'idem_requests_total')).toBe(1000)
    expect(await labelValues(registry, 'idem_function_duration_seconds_count', 'scope')).toHaveLength(11)
  })

  it('keeps 500 routes to the cap, and 500 principals of one route to one label', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry, maxLabelValues: 10 })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    metrics.watch(http)
    for (let i = 0; i < 500; i++) {
      const path = `/orders/${i}` // a framework that knows no template gives the path
      const headers = { 'idempotency-key': `k${i}`, authorization: `Bearer user-${i}` }
      const decision = await http.decide({ method: 'POST', url: path, route: path, headers, body: '{}' })
      if (decision.action === 'proceed') await decision.capture.end(201, [])
    }
    expect(await labelValues(registry, 'idem_http_requests_total', 'route')).toHaveLength(11)
    expect(await labelValues(registry, 'idem_requests_total', 'scope')).toHaveLength(11)
    expect(await sumOf(registry, 'idem_http_requests_total', { route: 'other' })).toBe(490)

    const single = new Registry()
    const one = idemMetrics({ registry: single, maxLabelValues: 10 })
    const route = new HttpIdempotency({ store: new MemoryStore() })
    one.watch(route)
    for (let i = 0; i < 500; i++) {
      const headers = { 'idempotency-key': `k${i}`, authorization: `Bearer user-${i}` }
      const decision = await route.decide({ method: 'POST', url: '/orders', route: '/orders', headers, body: '{}' })
      if (decision.action === 'proceed') await decision.capture.end(201, [])
    }
    expect(await labelValues(single, 'idem_requests_total', 'scope')).toEqual(['http|POST /orders'])
    expect(await sumOf(single, 'idem_requests_total', { scope: 'http|POST /orders' })).toBe(500)
  })

  it('caps consumer names', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry, maxLabelValues: 2 })
    const idem = new Idempotency({ store: new MemoryStore() })
    for (let i = 0; i < 5; i++) metrics.watch(new IdempotentConsumer({ idem, handler: () => 1 }), { name: `c${i}` })
    expect(await labelValues(registry, 'idem_consumer_received_total', 'consumer')).toEqual(['c0', 'c1', 'other'])
  })
})
