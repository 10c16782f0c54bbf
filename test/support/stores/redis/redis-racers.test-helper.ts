// Racers across separate clients (separate connections, as separate processes would have; ioredis,
// node-redis or both mixed): claims on one key, a takeover of a lapsed lease, and whole runs with
// a counted effect.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BeginResult } from '../../../../src/contract/types.js'
import { Idempotency } from '../../../../src/core/idempotency.js'
import { linkTo } from '../../../../src/drivers/redis-link.js'
import { RedisStore, type RedisStoreClient } from '../../../../src/stores/redis/redis-store.js'
import { deleteByPrefix, LEASE_MS, TTL_MS, testPrefix } from './redis-harness.test-helper.js'

const CLIENTS = 5
const PER_CLIENT = 10

/**
 * `connect(i)` makes the i-th client; `cleaner` is an ioredis client (made and quit here) that
 * deletes the test's keys.
 */
export function describeRedisRacers(
  name: string,
  connect: (i: number) => RedisStoreClient | Promise<RedisStoreClient>,
  cleaner: () => Redis | Cluster,
): void {
  describe(`RedisStore racers on ${name}, ${CLIENTS} clients`, () => {
    const prefix = testPrefix()
    let clients: RedisStoreClient[] = []
    let stores: RedisStore[] = []
    beforeAll(async () => {
      clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connect(i)))
      stores = clients.map((client) => new RedisStore({ client, prefix }))
    })
    afterAll(async () => {
      const cleaning = cleaner()
      await deleteByPrefix(cleaning, prefix)
      await Promise.all([...clients, cleaning].map((client) => linkTo(client).quit()))
    })

    /** Every store begins `id` PER_CLIENT times at once; the outcomes, all clients together. */
    const race = async (id: string): Promise<BeginResult[]> =>
      (
        await Promise.all(
          stores.flatMap((store) => Array.from({ length: PER_CLIENT }, () => store.begin(id, 'fp', LEASE_MS, TTL_MS))),
        )
      ).flat()

    it(`lets exactly one of ${CLIENTS * PER_CLIENT} begins acquire a key, 10 rounds`, async () => {
      for (let round = 0; round < 10; round++) {
        const results = await race(`race-${round}`)
        const outcomes = results.map((r) => r.outcome)
        expect(
          outcomes.filter((o) => o === 'acquired'),
          `round ${round}`,
        ).toHaveLength(1)
        expect(
          outcomes.filter((o) => o === 'in_progress'),
          `round ${round}`,
        ).toHaveLength(CLIENTS * PER_CLIENT - 1)
      }
    })

    it('lets exactly one racer take over a lapsed lease, with attempt 2', async () => {
      for (let round = 0; round < 3; round++) {
        const id = `takeover-${round}`
        const first = await stores[0]?.begin(id, 'fp', LEASE_MS, TTL_MS)
        expect(first?.outcome).toBe('acquired')
        await sleep(LEASE_MS + 15)
        const acquired = (await race(id)).filter((r) => r.outcome === 'acquired')
        expect(acquired, `round ${round}`).toHaveLength(1)
        expect(acquired[0]).toMatchObject({ attempt: 2, recovered: true })
        // The old owner is fenced off, the new one completes.
        if (first?.outcome === 'acquired') {
          await expect(stores[1]?.complete(id, first.token, '"old"', TTL_MS)).rejects.toMatchObject({
            code: 'LEASE_LOST',
          })
        }
        const winner = acquired[0] as Extract<BeginResult, { outcome: 'acquired' }>
        await stores[2]?.complete(id, winner.token, '"new"', TTL_MS)
        expect((await stores[3]?.get(id))?.result).toBe('"new"')
      }
    })

    it('runs the effect once when every client runs the same key at once', async () => {
      let effects = 0
      const idems = stores.map((store) => new Idempotency({ store, scope: 'race', onInProgress: 'wait' }))
      const outs = await Promise.all(
        idems.flatMap((idem) =>
          Array.from({ length: PER_CLIENT }, () =>
            idem.run({ key: 'run-once', payload: { n: 1 } }, async () => {
              effects++
              await sleep(20)
              return { effects }
            }),
          ),
        ),
      )
      expect(effects).toBe(1)
      expect(outs.filter((o) => o.status === 'executed')).toHaveLength(1)
      expect(outs.every((o) => (o.value as { effects: number }).effects === 1)).toBe(true)
    })
  })
}
