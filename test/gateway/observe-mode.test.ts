// Observe mode is a dry run of enforce: the same traffic through a route in `observe` mode and a
// route in `enforce` mode (one gateway process, one Redis, one counting upstream) must count, as
// "would have replayed / rejected", exactly what enforce replayed and rejected (by code), while
// forwarding every request to the upstream.

import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../services.js'
import {
  ADMIN,
  type Answer,
  type GatewayProcess,
  LISTEN,
  send,
  startGatewayProcess,
} from '../support/gateway/gateway-process.test-helper.js'
import { startUpstream, type Upstream } from '../support/gateway/upstream.test-helper.js'

interface RouteView {
  name: string
  mode: string
  stats: {
    requests: number
    outcomes: Record<string, number>
    rejected: Record<string, number>
    observed: { replayed: number; rejected: number; rejectedByCode: Record<string, number> }
  }
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('observe mode against enforce mode, same traffic', () => {
    let upstream: Upstream
    let gateway: GatewayProcess

    beforeAll(async () => {
      upstream = await startUpstream()
      // Two routes on one path, told apart by method: POST observes, PATCH enforces.
      gateway = await startGatewayProcess({
        listen: LISTEN,
        admin: ADMIN,
        upstream: { url: upstream.url },
        stores: {
          redis: { type: 'redis', url: SERVICES.Redis.url, prefix: `idem-gw-observe:${isolatedName('run')}:` },
        },
        defaults: { store: 'redis' },
        routes: [
          { name: 'watched', match: { methods: ['POST'], path: '/slow' }, mode: 'observe' },
          { name: 'guarded', match: { methods: ['PATCH'], path: '/slow' }, mode: 'enforce' },
        ],
      })
    }, 60_000)

    afterAll(async () => {
      await gateway?.stop()
      await upstream?.stop()
    })

    /** The traffic, phase after phase so that each phase's decisions are certain. All answers, in order. */
    async function traffic(method: 'POST' | 'PATCH'): Promise<Answer[]> {
      const run = randomUUID()
      const keys = Array.from({ length: 5 }, (_, i) => `${method}-${run}-${i}`)
      const go = (key: string | undefined, body: unknown, ms = 0) =>
        send(gateway.url, `/slow?ms=${ms}`, { method, key, body })
      const answers: Answer[] = []
      // 5 new keys: executed.
      answers.push(...(await Promise.all(keys.map((key) => go(key, { id: key, n: 1 })))))
      // 3 of them again, same body: replays.
      answers.push(...(await Promise.all(keys.slice(0, 3).map((key) => go(key, { id: key, n: 1 })))))
      // One reused with another body: FINGERPRINT_MISMATCH.
      answers.push(await go(keys[3], { id: keys[3], n: 2 }))
      // 10 at once with a new key, against a 1.5 s execution: one executes, 9 find it IN_PROGRESS.
      const concurrent = `${method}-${run}-c`
      answers.push(...(await Promise.all(Array.from({ length: 10 }, () => go(concurrent, { id: concurrent }, 1500)))))
      // 2 without a key: forwarded unprotected by both.
      answers.push(...(await Promise.all([go(undefined, { n: 'a' }), go(undefined, { n: 'b' })])))
      return answers
    }

    const routes = async (): Promise<Record<string, RouteView>> => {
      const { status, body } = await gateway.admin('GET', 'v1/routes')
      expect(status).toBe(200)
      return Object.fromEntries((body.routes as RouteView[]).map((route) => [route.name, route]))
    }

    it('observe forwards everything and counts exactly what enforce replayed and rejected, by code', async () => {
      const start = (await upstream.executions()).total
      const observed = await traffic('POST')
      const afterObserve = (await upstream.executions()).total
      const enforced = await traffic('PATCH')
      const afterEnforce = (await upstream.executions()).total

      // Observe: every request reached the upstream and got the upstream's own answer.
      expect(afterObserve - start).toBe(observed.length)
      expect(observed.map((a) => a.status)).toEqual(Array(observed.length).fill(201))

      // Enforce: 5 new keys, the concurrent key once, 2 without a key.
      expect(afterEnforce - afterObserve).toBe(8)
      const byStatus = (answers: Answer[]) => {
        const counts: Record<number, number> = {}
        for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1
        return counts
      }
      expect(byStatus(enforced)).toEqual({ 201: 5 + 3 + 1 + 2, 409: 9, 422: 1 })

      const { watched, guarded } = (await routes()) as { watched: RouteView; guarded: RouteView }
      expect(watched.mode).toBe('observe')
      expect(guarded.mode).toBe('enforce')
      expect(guarded.stats.outcomes).toMatchObject({ executed: 6, replayed: 3, rejected: 10, no_key: 2 })
      expect(guarded.stats.rejected).toEqual({ FINGERPRINT_MISMATCH: 1, IN_PROGRESS: 9 })

      // The point: what observe would have done is what enforce did.
      expect(watched.stats.observed.replayed).toBe(guarded.stats.outcomes.replayed)
      expect(watched.stats.observed.rejected).toBe(guarded.stats.outcomes.rejected)
      expect(watched.stats.observed.rejectedByCode).toEqual(guarded.stats.rejected)
      // And observe itself replayed and rejected nothing: it forwarded what it would have refused.
      expect(watched.stats.outcomes).toMatchObject({ executed: 6, replayed: 0, rejected: 0, no_key: 2, forwarded: 13 })
      expect(watched.stats.requests).toBe(observed.length)
      expect(guarded.stats.requests).toBe(enforced.length)
    })
  })
}
