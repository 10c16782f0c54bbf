// The observability example runs as written: the counters on its /metrics are what its traffic
// caused, its log has the warning for the reused key, and docs/observability.md shows it as it is.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { requireService, SERVICES } from '../../test/services.js'
import { driveShop } from './main.js'

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

it('docs/observability.md shows the example exactly as it is', () => {
  const doc = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8')
  const shown = /<!-- example: examples\/observability\/shop\.ts -->\n```ts\n([\s\S]*?)```/.exec(doc)
  expect(shown?.[1]).toBe(readFileSync(new URL('./shop.ts', import.meta.url), 'utf8'))
})
