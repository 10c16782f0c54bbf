// The window a gateway cannot close on its own: the upstream has answered, the completion is not
// stored yet, and the gateway dies. Hit deterministically here instead of by luck: the replicas'
// Redis (a private one) pauses writes (CLIENT PAUSE WRITE) after replica A claimed the key, so A's
// completion hangs in Redis while A is SIGKILLed. Redis drops a dead client's unprocessed
// commands, so the completion is never written: the claim lapses, the retry through replica B
// takes it over, and the upstream runs a second time. At most twice, and twice here: the gateway
// cannot tell "ran" from "did not run", only an upstream that is idempotent itself can do better.
// What the gateway does guarantee is that A's client never saw the response complete (the proxy
// holds back its last bytes until the outcome is stored), so it had every reason to retry.

import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireRedisBinaries } from '../services.js'
import {
  ADMIN,
  type Answer,
  type GatewayProcess,
  LISTEN,
  send,
  startGatewayProcesses,
} from '../support/gateway/gateway-process.test-helper.js'
import { type RedisProcess, startPrivateRedis } from '../support/gateway/private-redis.test-helper.js'
import { startUpstream, type Upstream } from '../support/gateway/upstream.test-helper.js'
import { until } from '../support/until.test-helper.js'

const run = promisify(execFile)
const LEASE_MS = 6000

if (await requireRedisBinaries('gateway crash window')) {
  describe('a replica killed after the upstream answered, before the completion was stored', () => {
    let upstream: Upstream
    let redis: RedisProcess & { url: string }
    let replicas: GatewayProcess[] = []
    const redisCli = async (...args: string[]) =>
      (await run('redis-cli', ['-p', String(redis.port), ...args], { timeout: 5000 })).stdout.trim()

    beforeAll(async () => {
      ;[upstream, redis] = await Promise.all([startUpstream(), startPrivateRedis()])
      replicas = await startGatewayProcesses(2, {
        listen: LISTEN,
        admin: ADMIN,
        upstream: { url: upstream.url },
        stores: { r: { type: 'redis', url: redis.url, prefix: 'idem-gw-crash:' } },
        routes: [{ name: 'orders', match: { methods: ['POST'], path: '/slow' }, store: 'r', lease: LEASE_MS }],
      })
    }, 60_000)

    afterAll(async () => {
      await redisCli('CLIENT', 'UNPAUSE').catch(() => undefined)
      await Promise.all(replicas.map((replica) => replica.stop()))
      await Promise.all([upstream?.stop(), redis?.stop()])
    })

    it('the retry takes the lapsed claim over and the upstream runs twice', async () => {
      const [a, b] = replicas as [GatewayProcess, GatewayProcess]
      const key = `window-${randomUUID()}`
      const body = { id: key }
      const path = '/slow?ms=500'
      const original = send(a.url, path, { key, body }).then(
        (answer) => answer,
        (error: unknown) => error as Error,
      )
      // A has claimed the key (the upstream started): from now on, writes wait in Redis.
      await until('the upstream to start', async () => (await upstream.executions()).byKey[key] === 1)
      expect(await redisCli('CLIENT', 'PAUSE', '30000', 'WRITE')).toBe('OK')
      try {
        // The upstream answers after 500 ms; A's first write after that is its completion (its
        // first lease renewal is due at a third of the 6 s lease), which Redis now holds: a client
        // blocked by the pause (flags=b).
        await until('A to wait in Redis with its completion', async () =>
          (await redisCli('CLIENT', 'LIST')).split('\n').some((line) => / flags=b /.test(line)),
        )
        await a.kill('SIGKILL')
      } finally {
        expect(await redisCli('CLIENT', 'UNPAUSE')).toBe('OK')
      }
      // The proxy holds back the response's last bytes until the outcome is stored: A's client
      // never saw a complete answer, so it retries (the upstream's 201 was lost with A).
      expect(await original).toBeInstanceOf(Error)
      // The completion A had sent died with A: the record is still A's claim, in progress.
      const { body: found } = await b.admin('GET', `v1/keys/orders/${key}`)
      expect(found.record).toMatchObject({ state: 'in_progress', attempt: 1 })

      // A's claim lives until its lease lapses: B answers 409 meanwhile.
      const during = await send(b.url, path, { key, body })
      expect(during.status).toBe(409)
      let after: Answer = during
      await until(
        'the lapsed claim to be taken over through B',
        async () => {
          after = await send(b.url, path, { key, body })
          return after.status !== 409
        },
        LEASE_MS + 5000,
      )
      expect(after.status).toBe(201)
      expect((JSON.parse(after.text) as { execution: number }).execution).toBe(2)
      expect((await upstream.executions()).byKey[key]).toBe(2)
      // From then on the second execution is replayed.
      const replay = await send(b.url, path, { key, body })
      expect(replay.text).toBe(after.text)
      expect((await upstream.executions()).byKey[key]).toBe(2)
    }, 30_000)
  })
}
