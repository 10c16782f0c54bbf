// The exposition of every family, with samples in each, passes `promtool check metrics`
// (Prometheus' own linter: names, types, help, histogram buckets).

import Database from 'better-sqlite3'
import { Registry } from 'prom-client'
import { afterAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../../test/services.js'
import { FakeBroker } from '../../../test/support/consumer/fake-broker.test-helper.js'
import { FaultyStore } from '../../../test/support/core/faulty-store.test-helper.js'
import { RecordingProducer } from '../../../test/support/outbox/outbox-rigs.test-helper.js'
import { missingBinary, promtoolCheck } from '../../../test/support/telemetry/prometheus.test-helper.js'
import { IdempotentConsumer } from '../../consumer/consumer.js'
import { consumerHandle } from '../../consumer/handle.js'
import { fingerprintOf } from '../../core/fingerprint.js'
import { Idempotency } from '../../core/idempotency.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { Outbox } from '../../outbox/outbox.js'
import { OutboxRelay } from '../../outbox/relay.js'
import { fromBetterSqlite3 } from '../../sql/better-sqlite3/better-sqlite3-database.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { ManualClock } from '../../testing/manual-clock.js'
import { ANOMALY_SOURCE, type Anomaly, type AnomalySource } from '../core/anomaly.js'
import { idemMetrics } from './index.js'

const missing = await missingBinary('promtool')
if (missing !== undefined) {
  reportMissing('idem/metrics under promtool check metrics', missing, 'has promtool (Debian package prometheus)')
} else {
  describe('idem/metrics under promtool check metrics', () => {
    const connection = new Database(':memory:')
    afterAll(() => connection.close())

    it('passes with samples in every family', async () => {
      const registry = new Registry()
      const metrics = idemMetrics({ registry })

      const clock = new ManualClock()
      const store = new FaultyStore(new MemoryStore({ clock: clock.now }))
      const idem = new Idempotency({ store, scope: 'billing', failOpen: true })
      metrics.watch(idem)
      await idem.run({ key: 'a', payload: 1 }, () => 1)
      await idem.run({ key: 'a', payload: 1 }, () => 1)
      await idem.run({ key: 'a', payload: 2 }, () => 1).catch(() => {})
      store.fail('begin', 1)
      await idem.run({ key: 'b' }, () => 1)
      // A worker that claimed and died: its lease lapses, the next call takes over.
      await store.inner.begin(idem.recordId('c'), fingerprintOf(undefined), 1000, 60_000)
      clock.advance(1001)
      await idem.run({ key: 'c' }, () => 1)

      const http = new HttpIdempotency({ store: new MemoryStore() })
      metrics.watch(http)
      const headers = { 'idempotency-key': 'k', 'content-type': 'application/json' }
      const decision = await http.decide({ method: 'POST', url: '/orders', route: '/orders', headers, body: '{}' })
      if (decision.action === 'proceed') await decision.capture.end(201, [])

      const consumer = new IdempotentConsumer<{ n: number }>({ idem, handler: () => 1 })
      const lifecycle = { close: async () => {}, done: Promise.resolve() }
      metrics.watch(consumerHandle(consumer, { rejected: 0 }, lifecycle, { lag: async () => 3 }), { name: 'orders' })
      const broker = new FakeBroker<{ n: number }>()
      broker.publish('m1', { n: 1 })
      broker.fail('ack', 1)
      for (const delivery of broker.take()) await consumer.handle(delivery)

      const db = fromBetterSqlite3(connection)
      const outbox = new Outbox()
      await outbox.ensureSchema(db)
      await db.transaction((_tx, sql) => outbox.add(sql, { id: 'o1', payload: {} }))
      const relay = new OutboxRelay({ outbox, db, producer: new RecordingProducer(), retention: false })
      metrics.watch(relay, { name: 'orders-outbox' })
      await relay.runOnce()

      const listeners: ((anomaly: Anomaly) => void)[] = []
      const detector: AnomalySource = {
        [ANOMALY_SOURCE]: true,
        on: (_name, listener) => {
          listeners.push(listener)
          return () => {}
        },
      }
      metrics.watch(detector)
      for (const listener of listeners) {
        listener({ kind: 'replays', subject: 'scope', scope: 'billing', rate: 9, baseline: 1, at: Date.now() })
      }

      const exposition = await registry.metrics()
      // Every family has samples.
      for (const metric of registry.getMetricsAsArray()) {
        expect(exposition, metric.name).toMatch(new RegExp(`^${metric.name}(?:_bucket|_sum|_count)?[{ ]`, 'm'))
      }
      const { code, output } = await promtoolCheck(exposition)
      expect(output).toBe('')
      expect(code).toBe(0)
    })

    it('fails an exposition that is not right (the check can fail)', async () => {
      const { code } = await promtoolCheck('# TYPE broken counter\nbroken{le="x" 1\n')
      expect(code).not.toBe(0)
    })
  })
}
