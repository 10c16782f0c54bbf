// Shared pieces of RedisStore's tests: clients that give up quickly, per-test key prefixes and
// their cleanup.

import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { createClient, type RedisClientType } from 'redis'
import { createClient as createRedis4Client, type RedisClientType as Redis4ClientType } from 'redis4'
import { describe, it } from 'vitest'
import type { RedisClient } from '../../../../src/drivers/ioredis.js'
import { RedisStore, type RedisStoreClient } from '../../../../src/stores/redis/redis-store.js'
import { describeStoreConformance, type StoreHarness } from '../../../../src/testing/index.js'
import { isolatedName } from '../../../services.js'

export const LEASE_MS = 300
export const TTL_MS = 1300

/** Tests never wait on ioredis' endless retries: one retry per command, then an error. */
export const TEST_CLIENT_OPTIONS: RedisOptions = { maxRetriesPerRequest: 1 }

export function redisClient(port = 6379, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port, ...TEST_CLIENT_OPTIONS, ...options })
  client.on('error', () => {})
  return client
}

export function clusterClient(nodes: { host: string; port: number }[]): Cluster {
  const client = new Cluster(nodes, { redisOptions: TEST_CLIENT_OPTIONS })
  client.on('error', () => {})
  return client
}

/** A connected node-redis client that gives up at once when Redis is down (no offline queue). */
export async function nodeRedisClient(port = 6379): Promise<RedisClientType> {
  const client = createClient({
    socket: { host: '127.0.0.1', port, reconnectStrategy: false },
    disableOfflineQueue: true,
  })
  client.on('error', () => {})
  await client.connect()
  return client as RedisClientType
}

/** The same with node-redis 4 (`redis@4`, still widely installed: @node-idempotency/core brings it), whose API differs from 5 on. */
export async function nodeRedis4Client(port = 6379): Promise<Redis4ClientType> {
  const client = createRedis4Client({
    socket: { host: '127.0.0.1', port, reconnectStrategy: false },
    disableOfflineQueue: true,
  })
  client.on('error', () => {})
  await client.connect()
  return client as Redis4ClientType
}

/** A fresh key prefix, unique to this test. */
export function testPrefix(): string {
  return `${isolatedName('idem_test')}:`
}

/** Delete every key under `prefix`, on every master of a Cluster. */
export async function deleteByPrefix(client: Redis | Cluster, prefix: string): Promise<void> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      // One DEL per key: in a Cluster, keys of different slots cannot share a DEL.
      for (const key of keys) await node.del(key)
    } while (cursor !== '0')
  }
}

/**
 * A conformance harness on `client`: a RedisStore with its own prefix, its keys deleted after.
 * `storeClient` is the client the store speaks through when it is not `client` (a node-redis one).
 */
export function harnessOn(client: Redis | Cluster, storeClient: RedisStoreClient = client): StoreHarness {
  const prefix = testPrefix()
  const store = new RedisStore({ client: storeClient, prefix })
  return {
    store,
    // The clock is Redis' own: let it run a little past `ms`.
    advance: (ms) => sleep(ms + 15),
    cleanup: async () => {
      await store.close()
      await deleteByPrefix(client, prefix)
    },
  }
}

/** A client that counts the commands RedisStore sends, to show batches are one round trip. */
export function counting(client: Redis | Cluster): { client: RedisClient; calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  const proxy = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(property)] = (calls[String(property)] ?? 0) + 1
        return value.apply(target, args)
      }
    },
  })
  return { client: proxy as unknown as RedisClient, calls }
}

/**
 * The store conformance suite on RedisStore: Redis' own clock (short lease and retention), native
 * expiry, and the acquiring begin's lease reported from this process's clock (within 100 ms).
 */
export function describeRedisConformance(name: string, create: () => StoreHarness): void {
  describeStoreConformance(
    { name, create, leaseMs: LEASE_MS, ttlMs: TTL_MS, nativeExpiry: true, acquiredLeaseToleranceMs: 100 },
    { describe, it },
  )
}
