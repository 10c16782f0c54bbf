// The store's circuit breaker under load, with a Redis of the test's own that it stops and starts
// again on the same port while one gateway process keeps serving two routes on it: one that fails
// open (forwards unprotected, counted) and one that fails closed (503 with Retry-After). Both must
// come back by themselves once Redis is back, without restarting the gateway.

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireRedisBinaries } from '../services.js'
import {
  ADMIN,
  type Answer,
  type GatewayProcess,
  LISTEN,
  send,
  startGatewayProcess,
} from '../support/gateway/gateway-process.test-helper.js'
import { type RedisProcess, startPrivateRedis } from '../support/gateway/private-redis.test-helper.js'
import { startUpstream, type Upstream } from '../support/gateway/upstream.test-helper.js'
import { until } from '../support/until.test-helper.js'

interface Logged {
  route: 'open' | 'closed'
  /** Sequence number of the loop iteration. */
  i: number
  key: string
  answer: Answer | Error
}

if (await requireRedisBinaries('gateway breaker')) {
  describe('store breaker: a Redis stopped and restarted under load', () => {
    let upstream: Upstream
    let redis: RedisProcess & { url: string }
    let gateway: GatewayProcess

    beforeAll(async () => {
      ;[upstream, redis] = await Promise.all([startUpstream(), startPrivateRedis()])
      gateway = await startGatewayProcess({
        listen: LISTEN,
        admin: ADMIN,
        upstream: { url: upstream.url },
        stores: { r: { type: 'redis', url: redis.url, prefix: 'idem-gw-breaker:' } },
        breaker: { failures: 3, halfOpenAfter: '1s' },
        defaults: { store: 'r' },
        routes: [
          { name: 'open', match: { methods: ['POST'], path: '/a' }, onStoreFailure: 'open' },
          { name: 'closed', match: { methods: ['POST'], path: '/b' }, onStoreFailure: 'closed' },
        ],
      })
    }, 60_000)

    afterAll(async () => {
      await gateway?.stop()
      await Promise.all([upstream?.stop(), redis?.stop()])
    })

    const status = async () => {
      const { body } = await gateway.admin('GET', 'v1/routes')
      return body as {
        routes: Array<{ name: string; stats: { failedOpen: number; outcomes: Record<string, number> } }>
        breakers: Array<{ store: string; state: string; opened: number }>
      }
    }

    it('fail-open keeps answering 201 (counted), fail-closed answers 503 with Retry-After, the breaker opens; both recover when Redis is back', async () => {
      const run = randomUUID()
      const log: Logged[] = []
      let running = true
      // The load: both routes, a new key every iteration, until the end of the test. An iteration
      // does not wait for the one before: a fail-closed request whose upstream answered just as
      // Redis died is held until its outcome is stored or its lease lapses (30 s), by design.
      const inFlight = new Set<Promise<void>>()
      const load = (async () => {
        for (let i = 0; running; i++) {
          const key = `load-${run}-${i}`
          for (const route of ['open', 'closed'] as const) {
            const request = send(gateway.url, route === 'open' ? '/a' : '/b', { key, body: { id: `${route}-${key}` } })
              .catch((error: unknown) => error as Error)
              .then((answer) => {
                log.push({ route, i, key, answer })
              })
            inFlight.add(request)
            void request.finally(() => inFlight.delete(request))
          }
          // At most a few iterations ahead of the answers, as a client pool would be.
          while (inFlight.size > 8) await Promise.race(inFlight)
          await sleep(10)
        }
        await Promise.all(inFlight)
      })()
      const statusOf = (entry: Logged) => (entry.answer instanceof Error ? entry.answer.message : entry.answer.status)
      const since = (i: number, route: Logged['route']) => log.filter((e) => e.i >= i && e.route === route)
      const iteration = () => (log.at(-1)?.i ?? 0) + 1

      try {
        await until('the load to be answered', () => log.length >= 10)
        expect(log.map(statusOf)).toEqual(Array(log.length).fill(201))

        // Redis goes away.
        await redis.kill()
        await until('the breaker to open', async () => (await status()).breakers[0]?.state === 'open')
        const open = iteration()
        await until('10 more iterations', () => since(open, 'closed').length >= 10 && since(open, 'open').length >= 10)
        // From the moment the breaker is open (through its half-open probes, which fail too):
        const failedOpen = since(open, 'open')
        const failedClosed = since(open, 'closed')
        expect(failedOpen.map(statusOf)).toEqual(Array(failedOpen.length).fill(201))
        expect(failedClosed.map(statusOf)).toEqual(Array(failedClosed.length).fill(503))
        for (const entry of failedClosed) {
          const answer = entry.answer as Answer
          expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
          expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/)
        }
        // The fail-open route really forwarded them (unprotected), and counted each.
        const executions = await upstream.executions()
        for (const entry of failedOpen) expect(executions.byKey[`open-${entry.key}`]).toBe(1)
        for (const entry of failedClosed) expect(executions.byKey[`closed-${entry.key}`]).toBeUndefined()
        const during = await status()
        const openRoute = during.routes.find((r) => r.name === 'open')
        const closedRoute = during.routes.find((r) => r.name === 'closed')
        expect(openRoute?.stats.failedOpen).toBeGreaterThanOrEqual(failedOpen.length)
        expect(closedRoute?.stats.failedOpen).toBe(0)
        expect(during.breakers[0]?.opened).toBeGreaterThanOrEqual(1)

        // Redis comes back on the same port (empty: it keeps nothing on disk).
        await redis.start()
        await until(
          'both routes and the breaker to recover',
          async () => {
            const last = log.slice(-2)
            return (
              last.length === 2 &&
              last.every((entry) => statusOf(entry) === 201) &&
              (await status()).breakers[0]?.state === 'closed'
            )
          },
          15_000,
        )
        const recovered = iteration()
        await until('10 more iterations', () => since(recovered, 'closed').length >= 10)
        expect(since(recovered, 'open').map(statusOf)).toEqual(Array(since(recovered, 'open').length).fill(201))
        expect(since(recovered, 'closed').map(statusOf)).toEqual(Array(since(recovered, 'closed').length).fill(201))

        // Enforce works again on both: a retry is a replay, the upstream runs once.
        for (const [route, path] of [
          ['open', '/a'],
          ['closed', '/b'],
        ] as const) {
          const key = `after-${run}-${route}`
          const body = { id: key }
          const first = await send(gateway.url, path, { key, body })
          const again = await send(gateway.url, path, { key, body })
          expect([first.status, again.status]).toEqual([201, 201])
          expect(again.text).toBe(first.text)
          expect((await upstream.executions()).byKey[key]).toBe(1)
        }
        const after = await status()
        expect(after.routes.find((r) => r.name === 'open')?.stats.outcomes.replayed).toBeGreaterThanOrEqual(1)
        expect(after.routes.find((r) => r.name === 'closed')?.stats.outcomes.replayed).toBeGreaterThanOrEqual(1)
      } finally {
        running = false
        await load
      }
      // The gateway answered every request of the load: no connection failed.
      expect(log.filter((entry) => entry.answer instanceof Error).map(statusOf)).toEqual([])
      expect(gateway.exited).toBe(false)
    }, 45_000)
  })
}
