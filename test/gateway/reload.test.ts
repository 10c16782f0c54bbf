// Reloading a running gateway process while a steady stream of requests goes through it: by SIGHUP
// (a route switched to observe, a route added), through the admin API (POST /v1/reload: the route
// back to enforce, and the store swapped for another prefix), and with an invalid file (refused,
// reported on stderr and as a 422 with the issues, the running configuration keeps serving).
// No request of the stream may fail.

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
import { until } from '../support/until.test-helper.js'

interface Sent {
  path: string
  key: string
  startedAt: number
  endedAt: number
  answer: Answer | Error
}

const PREFIX = `idem-gw-reload:${isolatedName('run')}`

function config(upstreamUrl: string, options: { mode: string; extra: boolean; prefix: string }): object {
  return {
    listen: LISTEN,
    admin: ADMIN,
    upstream: { url: upstreamUrl },
    stores: { redis: { type: 'redis', url: SERVICES.Redis.url, prefix: options.prefix } },
    defaults: { store: 'redis' },
    routes: [
      { name: 'orders', match: { methods: ['POST'], path: '/slow' }, mode: options.mode },
      ...(options.extra ? [{ name: 'extra', match: { methods: ['POST'], path: '/extra' } }] : []),
    ],
  }
}

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('reloading a gateway process under load', () => {
    let upstream: Upstream
    let gateway: GatewayProcess

    beforeAll(async () => {
      upstream = await startUpstream()
      gateway = await startGatewayProcess(
        config(upstream.url, { mode: 'enforce', extra: false, prefix: `${PREFIX}:a:` }),
      )
    }, 60_000)

    afterAll(async () => {
      await gateway?.stop()
      await upstream?.stop()
    })

    const routes = async () => {
      const { status, body } = await gateway.admin('GET', 'v1/routes')
      expect(status).toBe(200)
      return Object.fromEntries((body.routes as Array<{ name: string; mode: string }>).map((r) => [r.name, r.mode]))
    }
    /** Some request of the stream started before `from` and ended after `to`: it was in flight across the swap. */
    const spanned = (sent: readonly Sent[], from: number, to: number) =>
      sent.some((s) => s.startedAt < from && s.endedAt > to && !(s.answer instanceof Error))

    it('SIGHUP and POST /v1/reload swap the configuration with no request failing; an invalid file is refused and the old one keeps serving', async () => {
      const run = randomUUID()
      const sent: Sent[] = []
      let running = true
      // 4 clients, each a request after the other: 300 ms ones on the idempotent route, and /extra.
      const stream = Promise.all(
        [0, 1, 2, 3].map(async (client) => {
          for (let i = 0; running; i++) {
            const path = i % 3 === 2 ? '/extra' : '/slow?ms=300'
            const key = `${run}-${client}-${i}`
            const startedAt = Date.now()
            const answer = await send(gateway.url, path, { key, body: { id: key } }).catch((e: unknown) => e as Error)
            sent.push({ path, key, startedAt, endedAt: Date.now(), answer })
          }
        }),
      )
      const outcome = (s: Sent) => (s.answer instanceof Error ? `${s.key}: ${s.answer.message}` : s.answer.status)

      try {
        await until('the stream to flow', () => sent.length >= 8)
        expect(await routes()).toEqual({ orders: 'enforce' })

        // 1. SIGHUP: orders to observe, a route added.
        gateway.writeConfig(config(upstream.url, { mode: 'observe', extra: true, prefix: `${PREFIX}:a:` }))
        const hupAt = Date.now()
        const reloaded = await gateway.reload()
        const hupDone = Date.now()
        expect(reloaded).toEqual({ event: 'config_reloaded', routes: ['orders', 'extra'] })
        expect(await routes()).toEqual({ orders: 'observe', extra: 'enforce' })
        // A request of the new route, stored in the first store.
        await until('an /extra request after the SIGHUP reload', () =>
          sent.some((s) => s.path === '/extra' && s.startedAt > hupDone),
        )
        const keyBefore = sent.find((s) => s.path === '/extra' && s.startedAt > hupDone)?.key as string
        expect((await gateway.admin('GET', `v1/keys/extra/${keyBefore}`)).status).toBe(200)

        // 2. The admin API: back to enforce, and the store swapped for another prefix (a new client).
        gateway.writeConfig(config(upstream.url, { mode: 'enforce', extra: true, prefix: `${PREFIX}:b:` }))
        const apiAt = Date.now()
        const answer = await gateway.admin('POST', 'v1/reload')
        const apiDone = Date.now()
        expect(answer).toEqual({ status: 200, body: { reloaded: true, routes: ['orders', 'extra'] } })
        expect(await routes()).toEqual({ orders: 'enforce', extra: 'enforce' })
        const { body: shown } = await gateway.admin('GET', 'v1/config')
        expect(shown.config.stores.redis.prefix).toBe(`${PREFIX}:b:`)
        // The new store is the one in use: a key stored before the swap is not in it, one after is.
        await until('an /extra request after the admin reload', () =>
          sent.some((s) => s.path === '/extra' && s.startedAt > apiDone),
        )
        const keyAfter = sent.find((s) => s.path === '/extra' && s.startedAt > apiDone)?.key as string
        expect((await gateway.admin('GET', `v1/keys/extra/${keyBefore}`)).status).toBe(404)
        expect((await gateway.admin('GET', `v1/keys/extra/${keyAfter}`)).status).toBe(200)

        // 3. An invalid file: refused by SIGHUP (reported on stderr) and by the admin API (422 with
        // the issues); the configuration in force stays and keeps serving.
        const invalid = config(upstream.url, { mode: 'sometimes', extra: true, prefix: `${PREFIX}:c:` })
        gateway.writeConfig(invalid)
        const rejected = await gateway.reload()
        expect(rejected.event).toBe('config_rejected')
        expect(rejected.error).toContain(`${gateway.configFile}: routes[0].mode: `)
        const refused = await gateway.admin('POST', 'v1/reload')
        expect(refused.status).toBe(422)
        expect(refused.body.issues).toEqual([{ path: 'routes[0].mode', message: expect.stringContaining('enforce') }])
        expect(await routes()).toEqual({ orders: 'enforce', extra: 'enforce' })
        expect((await gateway.admin('GET', 'v1/config')).body.config.stores.redis.prefix).toBe(`${PREFIX}:b:`)
        const refusedAt = Date.now()
        await until('requests after the refused reload to be answered', () =>
          sent.some((s) => s.startedAt > refusedAt && s.path !== '/extra'),
        )

        // Requests were in flight across both swaps, and finished fine.
        expect(spanned(sent, hupAt, hupDone)).toBe(true)
        expect(spanned(sent, apiAt, apiDone)).toBe(true)
      } finally {
        running = false
        await stream
      }
      // Not one request failed: every answer is the upstream's 201 (new keys only).
      expect(sent.filter((s) => outcome(s) !== 201).map(outcome)).toEqual([])
      expect(gateway.exited).toBe(false)
      // Counters of a route survive reloads that keep its name.
      const { body } = await gateway.admin('GET', 'v1/routes')
      const orders = (body.routes as Array<{ name: string; stats: { requests: number } }>).find(
        (r) => r.name === 'orders',
      )
      expect(orders?.stats.requests).toBe(sent.filter((s) => s.path !== '/extra').length)
    }, 40_000)
  })
}
