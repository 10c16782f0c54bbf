// The observability example runs as written: the counters on its /metrics are what its traffic
// caused, its log has the warning for the reused key, a real Prometheus scraping the app reads the
// same numbers, and docs/observability.md shows it as it is.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { reportMissing, requireService, SERVICES } from '../../test/services.js'
import {
  missingBinary,
  type PrometheusServer,
  startPrometheus,
} from '../../test/support/telemetry/prometheus.test-helper.js'
import { until } from '../../test/support/until.test-helper.js'
import { driveShop } from './main.js'
import { startShop } from './shop.js'

/** The sum of the samples of `name` whose labels include `labels`, from a Prometheus text exposition. */
function sample(exposition: string, name: string, labels: Record<string, string>): number {
  let sum = 0
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const have = Object.fromEntries([...(match[2] as string).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([label, value]) => have[label] === value)) sum += Number(match[3])
  }
  return sum
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('examples/observability', () => {
    it('counts what its traffic caused, and logs the reused key', async () => {
      const redis = new Redis(SERVICES.Redis.port, '127.0.0.1')
      const stream = `idem-example-orders-${randomUUID()}`
      const logged: { level: string; entry: Record<string, unknown> }[] = []
      const logger = {
        info: (entry: Record<string, unknown>) => logged.push({ level: 'info', entry }),
        warn: (entry: Record<string, unknown>) => logged.push({ level: 'warn', entry }),
        error: (entry: Record<string, unknown>) => logged.push({ level: 'error', entry }),
      }
      try {
        const { metrics, shipped } = await driveShop(redis, stream, logger)
        expect(shipped).toEqual(['order-1'])
        const http = (labels: Record<string, string>) =>
          sample(metrics, 'idem_http_requests_total', { route: '/payments', method: 'POST', ...labels })
        expect(http({ outcome: 'executed', status: '201' })).toBe(3)
        expect(http({ outcome: 'replayed', status: '201' })).toBe(2)
        expect(http({ outcome: 'rejected', status: '422' })).toBe(1)
        // The runs behind them: HTTP scopes are labelled by route, never by caller.
        expect(sample(metrics, 'idem_requests_total', { scope: 'http|POST /payments', outcome: 'executed' })).toBe(3)
        expect(sample(metrics, 'idem_requests_total', { scope: 'http|POST /payments', outcome: 'replayed' })).toBe(2)
        expect(sample(metrics, 'idem_requests_total', { scope: 'http|POST /payments', outcome: 'mismatch' })).toBe(1)
        expect(sample(metrics, 'idem_requests_total', { scope: 'shop', outcome: 'executed' })).toBe(1)
        expect(sample(metrics, 'idem_requests_total', { scope: 'shop', outcome: 'replayed' })).toBe(1)
        expect(sample(metrics, 'idem_consumer_received_total', { consumer: 'shipping' })).toBe(2)
        expect(sample(metrics, 'idem_consumer_settled_total', { consumer: 'shipping', outcome: 'executed' })).toBe(1)
        expect(sample(metrics, 'idem_consumer_settled_total', { consumer: 'shipping', outcome: 'replayed' })).toBe(1)
        expect(logged.filter(({ level }) => level === 'warn').map(({ entry }) => entry.event)).toEqual([
          'idem.mismatch',
        ])
      } finally {
        await redis.del(stream, `${stream}:dead`)
        redis.disconnect()
      }
    })
  })
}

const prometheusMissing = await missingBinary('prometheus')
if (prometheusMissing !== undefined) {
  reportMissing('the example scraped by Prometheus', prometheusMissing, 'has prometheus (Debian package prometheus)')
} else if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('examples/observability scraped by Prometheus', () => {
    it("Prometheus reads from the app's /metrics what its traffic caused", async () => {
      const redis = new Redis(SERVICES.Redis.port, '127.0.0.1')
      const stream = `idem-example-orders-${randomUUID()}`
      const quiet = { info: () => {}, warn: () => {}, error: () => {} }
      const shop = await startShop(redis, stream, quiet)
      let prometheus: PrometheusServer | undefined
      try {
        prometheus = await startPrometheus(new URL(shop.url).host)
        const pay = (key: string, amount: number) =>
          fetch(`${shop.url}/payments`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body: JSON.stringify({ amount }),
          }).then((response) => response.status)
        const keys = [randomUUID(), randomUUID(), randomUUID()]
        for (const key of keys) expect(await pay(key, 5)).toBe(201)
        for (const key of keys.slice(0, 2)) expect(await pay(key, 5)).toBe(201)
        expect(await pay(keys[0] as string, 6)).toBe(422)

        const server = prometheus
        const expected: Record<string, number> = {
          'sum(idem_http_requests_total{outcome="executed",status="201"})': 3,
          'sum(idem_http_requests_total{outcome="replayed",status="201"})': 2,
          'sum(idem_http_requests_total{outcome="rejected",status="422"})': 1,
          'sum(idem_requests_total{scope="http|POST /payments",outcome="mismatch"})': 1,
        }
        const read = async () =>
          Object.fromEntries(
            await Promise.all(Object.keys(expected).map(async (q) => [q, await server.query(q)] as const)),
          )
        let last: Record<string, number | undefined> = {}
        await until(
          () => `Prometheus to read ${JSON.stringify(expected)}, last read ${JSON.stringify(last)}`,
          async () => {
            last = await read()
            return Object.entries(expected).every(([q, n]) => last[q] === n)
          },
        )
        expect(await server.query('sum(up{job="idem"})')).toBe(1)
      } finally {
        await prometheus?.stop()
        await shop.close()
        await redis.del(stream, `${stream}:dead`)
        redis.disconnect()
      }
    }, 60_000)
  })
}

it('docs/observability.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/observability\/shop\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./shop.ts', import.meta.url), 'utf8'))
})
