import { Cluster } from 'ioredis'
import { createCluster, type RedisClusterType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireRedisBinaries } from '../../../test/services.js'
import {
  type RedisClusterProcess,
  startRedisCluster,
} from '../../../test/support/stores/redis/redis-cluster.test-helper.js'
import {
  clusterClient,
  counting,
  deleteByPrefix,
  describeRedisConformance,
  harnessOn,
  LEASE_MS,
  TTL_MS,
  testPrefix,
} from '../../../test/support/stores/redis/redis-harness.test-helper.js'
import { describeRedisRacers } from '../../../test/support/stores/redis/redis-racers.test-helper.js'
import { recordSlot } from './redis-keys.js'
import { RedisStore } from './redis-store.js'

const PORTS = [7101, 7102, 7103]

if (await requireRedisBinaries('Redis Cluster (3 masters on 127.0.0.1:7101-7103)')) {
  let cluster: RedisClusterProcess | undefined
  let shared: Cluster
  const connect = (): Cluster => clusterClient((cluster as RedisClusterProcess).nodes)
  beforeAll(async () => {
    cluster = await startRedisCluster(PORTS)
    shared = connect()
  }, 60_000)
  afterAll(async () => {
    await shared?.quit().catch(() => shared.disconnect())
    await cluster?.stop()
  }, 30_000)

  describeRedisConformance('RedisStore (3-master Cluster)', () => harnessOn(shared))

  describeRedisRacers('a 3-master Cluster', connect, connect)

  describe('RedisStore on a node-redis Cluster', () => {
    const connectNodeRedis = async (): Promise<RedisClusterType> => {
      const client = createCluster({
        rootNodes: (cluster as RedisClusterProcess).nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
      })
      client.on('error', () => {})
      return (await client.connect()) as RedisClusterType
    }
    let nodeRedis: RedisClusterType
    beforeAll(async () => {
      nodeRedis = await connectNodeRedis()
    })
    afterAll(() => nodeRedis?.close())

    describeRedisConformance('RedisStore (3-master Cluster, node-redis)', () => harnessOn(shared, nodeRedis))
  })

  describeRedisRacers(
    'a 3-master Cluster, ioredis and node-redis mixed',
    async (i) => {
      if (i % 2 === 0) return connect()
      const client = createCluster({
        rootNodes: (cluster as RedisClusterProcess).nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
      })
      client.on('error', () => {})
      return (await client.connect()) as RedisClusterType
    },
    connect,
  )

  describe('RedisStore on a Cluster', () => {
    it('fails with STORE_UNAVAILABLE naming the startup nodes when no node is reachable', async () => {
      const client = new Cluster([{ host: '127.0.0.1', port: 1 }], {
        redisOptions: { maxRetriesPerRequest: 1 },
        // ioredis retries a Cluster's start-up forever unless told to give up.
        clusterRetryStrategy: (times) => (times > 2 ? null : 50),
      })
      client.on('error', () => {})
      try {
        const started = Date.now()
        await expect(new RedisStore({ client }).begin('k', 'fp', LEASE_MS, TTL_MS)).rejects.toMatchObject({
          code: 'STORE_UNAVAILABLE',
          message: /^Redis Cluster at 127\.0\.0\.1:1 is unreachable: /,
        })
        expect(Date.now() - started).toBeLessThan(3000)
      } finally {
        client.disconnect()
      }
    })

    const ids = Array.from({ length: 60 }, (_, i) => `5:batch:item-${i}`)
    /** The master serving each id's slot, by the client's slot map. */
    const nodeOf = (id: string): string => shared.slots[recordSlot(id)]?.[0] ?? 'unknown'
    /** Batches on every node under a scratch prefix, so that every master has the batch scripts cached. */
    const warmUp = async (prefix: string): Promise<void> => {
      const store = new RedisStore({ client: shared, prefix: `${prefix}warm:` })
      const begun = await store.beginMany(
        ids.map((id) => ({ id, fingerprint: 'fp' })),
        LEASE_MS,
        TTL_MS,
      )
      await store.completeMany(
        ids.map((id, i) => ({ id, token: begun[i]?.outcome === 'acquired' ? begun[i].token : 'x', result: '1' })),
        TTL_MS,
      )
    }

    it('computes the slot Redis computes for every key, braces and all', async () => {
      const odd = ['a}b', '{x}', '}', '{', '%', 'a%7Db', 'é 💳', '3:a:b:{c}:d', ...ids.slice(0, 10)]
      const store = new RedisStore({ client: shared, prefix: 'p:' })
      for (const id of odd) {
        const node = shared.nodes('master')[0]
        expect(await node?.cluster('KEYSLOT', store.key(id)), id).toBe(recordSlot(id))
      }
    })

    it('spreads a batch over every master, one pipeline per node, answers in input order', async () => {
      expect(new Set(ids.map(nodeOf)).size).toBe(3)
      const prefix = testPrefix()
      const { client, calls } = counting(shared)
      const store = new RedisStore({ client, prefix })
      try {
        await warmUp(prefix)
        // A duplicate id in one batch behaves as a second, sequential begin.
        const items = [...ids, ids[7] as string].map((id) => ({ id, fingerprint: 'fp' }))
        const begun = await store.beginMany(items, LEASE_MS, TTL_MS)
        expect(begun.map((r) => r.outcome)).toEqual([...ids.map(() => 'acquired'), 'in_progress'])
        expect(calls).toEqual({ pipeline: 3 })
        const tokens = begun.map((r) => (r.outcome === 'acquired' ? r.token : 'none'))
        const done = await store.completeMany(
          ids.map((id, i) => ({ id, token: i % 10 === 3 ? 'stale' : (tokens[i] as string), result: `"${id}"` })),
          TTL_MS,
        )
        expect(done).toEqual(ids.map((_, i) => (i % 10 === 3 ? 'lease_lost' : 'completed')))
        expect(calls).toEqual({ pipeline: 6 })
        const again = await store.beginMany(
          ids.map((id) => ({ id, fingerprint: 'fp' })),
          LEASE_MS,
          TTL_MS,
        )
        ids.forEach((id, i) => {
          expect(again[i], id).toMatchObject(
            i % 10 === 3 ? { outcome: 'in_progress' } : { outcome: 'completed', result: `"${id}"` },
          )
        })
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    it('recovers from SCRIPT FLUSH on every master, for single calls and pipelined batches', async () => {
      const prefix = testPrefix()
      const { client, calls } = counting(shared)
      const store = new RedisStore({ client, prefix })
      try {
        const flush = () => Promise.all(shared.nodes('master').map((node) => node.script('FLUSH')))
        await flush()
        const begun = await store.beginMany(
          ids.map((id) => ({ id, fingerprint: 'fp' })),
          LEASE_MS,
          TTL_MS,
        )
        expect(begun.every((r) => r.outcome === 'acquired')).toBe(true)
        // Per node: the pipeline answered NOSCRIPT, then one more that starts with EVAL.
        expect(calls).toEqual({ pipeline: 6 })
        await flush()
        expect((await store.begin('single', 'fp', LEASE_MS, TTL_MS)).outcome).toBe('acquired')
        await flush()
        const done = await store.completeMany(
          ids.map((id, i) => {
            const r = begun[i]
            return { id, token: r?.outcome === 'acquired' ? r.token : '', result: '1' }
          }),
          TTL_MS,
        )
        expect(done.every((d) => d === 'completed')).toBe(true)
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })
  })
}
