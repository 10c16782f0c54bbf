// The life of an `idemMetrics()`: its families registered at once (and none when one name is
// taken), the default registry, options checked, unknown targets refused, close().

import { Registry, register } from 'prom-client'
import { describe, expect, it, vi } from 'vitest'
import { samplesOf } from '../../../test/support/telemetry/metrics.test-helper.js'
import { Idempotency } from '../../core/idempotency.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { ANOMALY_SOURCE, type Anomaly, type AnomalySource } from '../core/anomaly.js'
import { idemMetrics } from './index.js'

const FAMILIES = [
  'idem_requests_total',
  'idem_lease_takeovers_total',
  'idem_store_errors_total',
  'idem_store_duration_seconds',
  'idem_function_duration_seconds',
  'idem_http_requests_total',
  'idem_consumer_received_total',
  'idem_consumer_settled_total',
  'idem_consumer_broker_errors_total',
  'idem_consumer_duration_seconds',
  'idem_consumer_in_flight',
  'idem_consumer_lag',
  'idem_outbox_published_total',
  'idem_outbox_retried_total',
  'idem_outbox_failed_total',
  'idem_outbox_errors_total',
  'idem_outbox_pending',
  'idem_outbox_failed_rows',
  'idem_outbox_oldest_pending_seconds',
  'idem_anomalies_total',
]

const names = (registry: Registry) => registry.getMetricsAsArray().map((metric) => metric.name)

describe('idemMetrics()', () => {
  it('registers every family at once, with its type', async () => {
    const registry = new Registry()
    idemMetrics({ registry })
    expect(names(registry)).toEqual(FAMILIES)
    const types = Object.fromEntries((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]))
    expect(types.idem_requests_total).toBe('counter')
    expect(types.idem_store_duration_seconds).toBe('histogram')
    expect(types.idem_consumer_lag).toBe('gauge')
  })

  it('refuses a second idemMetrics on one registry, naming the metric, and registers none of its families', () => {
    const registry = new Registry()
    const first = idemMetrics({ registry })
    expect(() => idemMetrics({ registry })).toThrow(
      'A metric with the name idem_requests_total has already been registered',
    )
    registry.removeSingleMetric('idem_requests_total')
    expect(() => idemMetrics({ registry })).toThrow('idem_lease_takeovers_total')
    expect(registry.getSingleMetric('idem_requests_total')).toBeUndefined()
    first.close()
    idemMetrics({ registry }) // free again
  })

  it('takes another prefix, and prom-client’s global registry by default', () => {
    const registry = new Registry()
    idemMetrics({ registry })
    idemMetrics({ registry, prefix: 'payments_' })
    expect(names(registry)).toContain('payments_requests_total')

    const metrics = idemMetrics()
    try {
      expect(metrics.registry).toBe(register)
      expect(register.getSingleMetric('idem_requests_total')).toBeDefined()
    } finally {
      metrics.close()
    }
    expect(register.getSingleMetric('idem_requests_total')).toBeUndefined()
  })

  it('checks its options', () => {
    const registry = new Registry()
    expect(() => idemMetrics({ registry, prefix: 'bad-prefix' })).toThrow(TypeError)
    expect(() => idemMetrics({ registry, maxLabelValues: 0 })).toThrow(RangeError)
    expect(() => idemMetrics({ registry, storeBuckets: [0.1, 0.01] })).toThrow(/increasing order/)
    expect(() => idemMetrics({ registry, functionBuckets: [] })).toThrow(TypeError)
    expect(names(registry)).toEqual([])
  })

  it('refuses what it cannot watch with the TypeError of targetOf', () => {
    const metrics = idemMetrics({ registry: new Registry() })
    expect(() => metrics.watch({} as never)).toThrow(TypeError)
    expect(() => metrics.watch({} as never)).toThrow(/idemMetrics\(\)\.watch takes an Idempotency/)
  })

  it('counts anomalies by kind', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const listeners: ((anomaly: Anomaly) => void)[] = []
    const source: AnomalySource = {
      [ANOMALY_SOURCE]: true,
      on: (_name, listener) => {
        listeners.push(listener)
        return () => listeners.splice(listeners.indexOf(listener), 1)
      },
    }
    const stop = metrics.watch(source)
    const raise = (kind: Anomaly['kind']) => {
      for (const listener of [...listeners]) {
        listener({ kind, subject: 'scope', scope: 'billing', rate: 10, baseline: 1, at: 0 })
      }
    }
    raise('replays')
    raise('replays')
    raise('mismatches')
    stop()
    raise('replays')
    expect(await samplesOf(registry, 'idem_anomalies_total')).toEqual([
      { labels: { kind: 'replays' }, value: 2 },
      { labels: { kind: 'mismatches' }, value: 1 },
    ])
  })

  it('close() stops watching, removes its metrics, and refuses watch afterwards', async () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const idem = new Idempotency({ store: new MemoryStore() })
    const attached = new Set<string>()
    const on = idem.on.bind(idem) as (name: string, listener: unknown) => () => void
    vi.spyOn(idem, 'on').mockImplementation(((name: string, listener: unknown) => {
      const off = on(name, listener)
      attached.add(name)
      return () => {
        attached.delete(name)
        off()
      }
    }) as typeof idem.on)
    const instrument = idem.instrument.bind(idem)
    vi.spyOn(idem, 'instrument').mockImplementation((probe) => {
      const detach = instrument(probe)
      attached.add('probe')
      return () => {
        attached.delete('probe')
        detach()
      }
    })
    const stop = metrics.watch(idem)
    expect(attached.size).toBe(9) // eight events and the probe
    metrics.close()
    expect(attached.size).toBe(0)
    expect(names(registry)).toEqual([])
    expect(() => metrics.watch(idem)).toThrow(/after close/)
    stop() // after close: nothing left to do
    // A new one may take the names over.
    idemMetrics({ registry }).watch(idem)
    await idem.run({ key: 'c' }, () => 1)
    expect(await samplesOf(registry, 'idem_requests_total')).toEqual([
      { labels: { scope: 'default', outcome: 'executed' }, value: 1 },
    ])
  })
})
