// idem/metrics scraped by a real Prometheus (Debian's prometheus 2.42): an Express app behind
// expressIdempotency takes N new keys, M duplicates and one mismatch; once Prometheus has scraped
// after the traffic, its queries give back exactly those numbers.

import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reportMissing } from '../../../test/services.js'
import {
  type MetricsExporter,
  missingBinary,
  type PrometheusServer,
  serveMetrics,
  startPrometheus,
} from '../../../test/support/telemetry/prometheus.test-helper.js'
import { HttpIdempotency } from '../../http/core/http-idempotency.js'
import { expressIdempotency } from '../../http/express/index.js'
import { MemoryStore } from '../../stores/memory/memory-store.js'
import { idemMetrics } from './index.js'

const NEW_KEYS = 12
const DUPLICATES = 7

const missing = await missingBinary('prometheus')
if (missing !== undefined) {
  reportMissing('idem/metrics scraped by Prometheus', missing, 'has prometheus (Debian package prometheus)')
} else {
  describe('idem/metrics scraped by Prometheus', () => {
    const registry = new Registry()
    const metrics = idemMetrics({ registry })
    const http = new HttpIdempotency({ store: new MemoryStore() })
    metrics.watch(http)
    let exporter: MetricsExporter | undefined
    let app: Server
    let prometheus: PrometheusServer | undefined

    async function listen(server: Server): Promise<string> {
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return `127.0.0.1:${(server.address() as AddressInfo).port}`
    }

    beforeAll(async () => {
      exporter = await serveMetrics(registry)
      const target = exporter.target

      const application = express()
      application.use(express.json())
      application.use(expressIdempotency(http))
      let next = 1
      application.post('/orders', (req, res) => {
        res.status(201).json({ id: next++, amount: req.body.amount })
      })
      app = createServer(application)
      await listen(app)

      prometheus = await startPrometheus(target)
    }, 60_000)

    afterAll(async () => {
      await prometheus?.stop()
      app?.close()
      exporter?.close()
      metrics.close()
    })

    async function order(key: string, amount: number): Promise<number> {
      const { port } = app.address() as AddressInfo
      const response = await fetch(`http://127.0.0.1:${port}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key, authorization: `Bearer ${key}` },
        body: JSON.stringify({ amount }),
      })
      await response.arrayBuffer()
      return response.status
    }

    /** Resolves after Prometheus started two scrapes past now: the first of them saw everything and is stored. */
    function scrapedAfterNow(): Promise<void> {
      return (exporter as MetricsExporter).scrapesAfterNow(2, 30_000)
    }

    it('counts the new keys, duplicates and the mismatch the app received', async () => {
      const server = prometheus as PrometheusServer
      for (let i = 0; i < NEW_KEYS; i++) expect(await order(`order-${i}`, i)).toBe(201)
      for (let i = 0; i < DUPLICATES; i++) expect(await order(`order-${i}`, i)).toBe(201)
      expect(await order('order-0', 999)).toBe(422)
      await scrapedAfterNow()

      expect(await server.query('sum(up{job="idem"})')).toBe(1)
      expect(await server.query('sum(idem_requests_total{outcome="executed"})')).toBe(NEW_KEYS)
      expect(await server.query('sum(idem_requests_total{outcome="replayed"})')).toBe(DUPLICATES)
      expect(await server.query('sum(idem_requests_total{outcome="mismatch"})')).toBe(1)
      expect(await server.query('sum(idem_requests_total)')).toBe(NEW_KEYS + DUPLICATES + 1)
      expect(await server.query('count(idem_requests_total)')).toBe(3) // one scope label, three outcomes
      expect(await server.query('sum(idem_http_requests_total{route="/orders",outcome="executed",status="201"})')).toBe(
        NEW_KEYS,
      )
      expect(await server.query('sum(idem_http_requests_total{outcome="replayed",status="201"})')).toBe(DUPLICATES)
      expect(await server.query('sum(idem_http_requests_total{outcome="rejected",status="422"})')).toBe(1)
      expect(await server.query('sum(idem_function_duration_seconds_count)')).toBe(NEW_KEYS)
      expect(await server.query('sum(idem_function_duration_seconds_bucket{le="+Inf"})')).toBe(NEW_KEYS)
      expect(await server.query('sum(idem_store_duration_seconds_count{operation="begin"})')).toBe(
        NEW_KEYS + DUPLICATES + 1,
      )
    }, 60_000)
  })
}
