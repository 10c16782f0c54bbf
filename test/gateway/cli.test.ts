// The `idem` CLI against two running gateway processes (replicas on one Redis): stats, mode on both
// replicas at once, inspect and purge of a key (after which the key's next request executes
// again), and the exit codes. main() runs in this process (its printed lines captured); the exit
// codes are also checked on the real executable, src/cli/bin.ts, spawned as operators run it.

import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { UsageError } from '../../src/cli/main.js'
import { isolatedName, requireService, SERVICES } from '../services.js'
import { runIdem, runIdemBin } from '../support/cli/idem-cli.test-helper.js'
import {
  ADMIN,
  ADMIN_TOKEN,
  type GatewayProcess,
  LISTEN,
  send,
  startGatewayProcesses,
} from '../support/gateway/gateway-process.test-helper.js'
import { startUpstream, type Upstream } from '../support/gateway/upstream.test-helper.js'

/** main() with its console output captured, as one text. */
const idem = async (...argv: string[]) => {
  const { code, out, err } = await runIdem(...argv)
  return { code, out: out.join('\n'), err }
}
const bin = runIdemBin

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('the idem CLI against two running gateways', () => {
    let upstream: Upstream
    let a: GatewayProcess
    let b: GatewayProcess
    const admins = () => ['--admin', a.adminUrl, '--admin', b.adminUrl, '--token', ADMIN_TOKEN]

    beforeAll(async () => {
      upstream = await startUpstream()
      ;[a, b] = (await startGatewayProcesses(2, {
        listen: LISTEN,
        admin: ADMIN,
        upstream: { url: upstream.url },
        stores: { r: { type: 'redis', url: SERVICES.Redis.url, prefix: `idem-gw-cli:${isolatedName('run')}:` } },
        defaults: { store: 'r' },
        routes: [{ name: 'orders', match: { methods: ['POST'], path: '/orders' } }],
      })) as [GatewayProcess, GatewayProcess]
    }, 60_000)

    afterEach(() => {
      vi.restoreAllMocks()
    })

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()])
      await upstream?.stop()
    })

    const modes = async () =>
      Promise.all(
        [a, b].map(async (gateway) => {
          const { body } = await gateway.admin('GET', 'v1/routes')
          return (body.routes as Array<{ name: string; mode: string }>).find((r) => r.name === 'orders')?.mode
        }),
      )

    it('idem stats: the counters of each replica and its breakers; --json gives the raw answers', async () => {
      const key = `stats-${randomUUID()}`
      expect((await send(a.url, '/orders', { key, body: { id: key } })).status).toBe(201)
      expect((await send(a.url, '/orders', { key, body: { id: key } })).status).toBe(201)

      const human = await idem('stats', ...admins())
      expect(human.code).toBe(0)
      expect(human.out).toContain(a.adminUrl)
      expect(human.out).toContain(b.adminUrl)
      expect(human.out).toMatch(/orders\s+enforce\s+\d+ req {2}executed \d+ {2}replayed \d+/)
      expect(human.out).toContain('store r: breaker closed (opened 0 times)')

      const raw = await idem('stats', '--json', '--admin', a.adminUrl, '--token', ADMIN_TOKEN)
      expect(raw.code).toBe(0)
      const answer = JSON.parse(raw.out) as {
        url: string
        status: number
        body: { routes: Array<{ name: string; stats: { outcomes: Record<string, number> } }> }
      }
      expect(answer.status).toBe(200)
      expect(answer.url).toBe(a.adminUrl)
      const orders = answer.body.routes.find((r) => r.name === 'orders')
      expect(orders?.stats.outcomes.executed).toBeGreaterThanOrEqual(1)
      expect(orders?.stats.outcomes.replayed).toBeGreaterThanOrEqual(1)
    })

    it('idem mode ROUTE observe with two --admin switches both replicas, and back', async () => {
      expect(await modes()).toEqual(['enforce', 'enforce'])
      const observe = await idem('mode', 'orders', 'observe', ...admins())
      expect(observe.code).toBe(0)
      expect(observe.out.match(/orders: enforce -> observe/g)).toHaveLength(2)
      expect(await modes()).toEqual(['observe', 'observe'])

      // Observe is in force on both: a duplicate is forwarded (the upstream runs it again) by either.
      const key = `mode-${randomUUID()}`
      await send(a.url, '/orders', { key, body: { id: key } })
      await send(b.url, '/orders', { key, body: { id: key } })
      expect((await upstream.executions()).byKey[key]).toBe(2)

      const enforce = await idem('mode', 'orders', 'enforce', ...admins())
      expect(enforce.code).toBe(0)
      expect(await modes()).toEqual(['enforce', 'enforce'])
      await send(b.url, '/orders', { key, body: { id: key } })
      expect((await upstream.executions()).byKey[key]).toBe(2)
    })

    it('idem inspect shows the record (from either replica); idem purge removes it, and the next request executes again', async () => {
      const key = `purge-${randomUUID()}`
      const body = { id: key }
      const original = await send(a.url, '/orders', { key, body })
      expect(original.status).toBe(201)

      // Replica B's admin reads the same store: the record replica A wrote.
      const inspected = await idem('inspect', 'orders', key, '--admin', b.adminUrl, '--token', ADMIN_TOKEN)
      expect(inspected.code).toBe(0)
      const found = JSON.parse(inspected.out) as { scope: string; record: { state: string; attempt: number } }
      expect(found.record).toMatchObject({ state: 'completed', attempt: 1 })
      expect(found.scope).toContain('POST orders')

      expect((await send(b.url, '/orders', { key, body })).text).toBe(original.text)
      expect((await upstream.executions()).byKey[key]).toBe(1)

      const purged = await idem('purge', 'orders', key, '--admin', a.adminUrl, '--token', ADMIN_TOKEN)
      expect(purged.code).toBe(0)
      expect(purged.out).toMatch(/^purged \(scope /)
      const missing = await idem('inspect', 'orders', key, '--admin', a.adminUrl, '--token', ADMIN_TOKEN)
      expect(missing.code).toBe(1)
      expect(missing.out).toMatch(/^error 404: No record for key/)

      const again = await send(b.url, '/orders', { key, body })
      expect(again.status).toBe(201)
      expect(again.text).not.toBe(original.text)
      expect((JSON.parse(again.text) as { execution: number }).execution).toBe(2)
      expect((await upstream.executions()).byKey[key]).toBe(2)

      const twice = await idem('purge', 'orders', key, '--admin', a.adminUrl, '--token', ADMIN_TOKEN)
      expect(twice.out).toMatch(/^purged/)
      const none = await idem('purge', 'orders', key, '--admin', a.adminUrl, '--token', ADMIN_TOKEN)
      expect(none.code).toBe(0)
      expect(none.out).toMatch(/^no record to purge/)
    })

    it('a wrong token fails with 1 (each replica reported); missing arguments are a usage error (2 from the executable)', async () => {
      const wrong = await idem('stats', '--admin', a.adminUrl, '--admin', b.adminUrl, '--token', 'not-the-token-at-all')
      expect(wrong.code).toBe(1)
      expect(wrong.out.match(/error 401: A valid admin token is required/g)).toHaveLength(2)
      // Nothing was switched with a wrong token.
      expect((await idem('mode', 'orders', 'off', '--admin', a.adminUrl, '--token', 'not-the-token-at-all')).code).toBe(
        1,
      )
      expect(await modes()).toEqual(['enforce', 'enforce'])
      // A replica that does not answer fails the command too, the other's answer still printed.
      const down = await idem('stats', '--admin', a.adminUrl, '--admin', 'http://127.0.0.1:1', '--token', ADMIN_TOKEN)
      expect(down.code).toBe(1)
      expect(down.err).toContain('http://127.0.0.1:1: the admin API did not answer')
      expect(down.out).toContain('orders')

      await expect(idem('mode', 'orders', ...admins())).rejects.toBeInstanceOf(UsageError)
      await expect(idem('inspect', 'orders', ...admins())).rejects.toBeInstanceOf(UsageError)
      await expect(idem('stats', '--token', ADMIN_TOKEN)).rejects.toBeInstanceOf(UsageError)

      const [badToken, missingArgs, noAdmin, unknown] = await Promise.all([
        bin('stats', '--admin', a.adminUrl, '--token', 'not-the-token-at-all'),
        bin('mode', 'orders', '--admin', a.adminUrl, '--token', ADMIN_TOKEN),
        bin('purge', 'orders', 'k', '--token', ADMIN_TOKEN),
        bin('frobnicate', '--admin', a.adminUrl, '--token', ADMIN_TOKEN),
      ])
      expect(badToken.code).toBe(1)
      expect(badToken.stdout).toContain('error 401')
      expect(missingArgs.code).toBe(2)
      expect(missingArgs.stderr).toContain('idem mode needs ROUTE and off|observe|enforce')
      expect(missingArgs.stderr).toContain('Usage:')
      expect(noAdmin.code).toBe(2)
      expect(noAdmin.stderr).toContain('--admin')
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain('Unknown command "frobnicate"')
    }, 30_000)
  })
}
