import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { requireService } from '../../../test/services.js'
import {
  counting,
  deleteByPrefix,
  describeRedisConformance,
  harnessOn,
  LEASE_MS,
  nodeRedis4Client,
  nodeRedisClient,
  redisClient,
  TTL_MS,
  testPrefix,
} from '../../../test/support/stores/redis/redis-harness.test-helper.js'
import { describeRedisRacers } from '../../../test/support/stores/redis/redis-racers.test-helper.js'
import { StoreUnavailableError } from '../../errors.js'
import { COMPLETE_KNOWN, COMPLETE_MANY } from './redis-scripts.js'
import { RedisStore } from './redis-store.js'

if (await requireService('Redis', 6379)) {
  const shared = redisClient()
  afterAll(() => shared.quit())

  describeRedisConformance('RedisStore (standalone)', () => harnessOn(shared))

  describeRedisRacers(
    'standalone Redis',
    () => redisClient(),
    () => redisClient(),
  )
  // Stores on both clients race on the same keys: they share one record format.
  describeRedisRacers(
    'standalone Redis, ioredis and node-redis mixed',
    (i) => (i % 2 === 0 ? redisClient() : nodeRedisClient()),
    () => redisClient(),
  )

  describe('RedisStore on node-redis 4', () => {
    let client: Awaited<ReturnType<typeof nodeRedis4Client>>
    beforeAll(async () => {
      client = await nodeRedis4Client()
    })
    afterAll(() => client.quit())

    // Also a compile-time check: a node-redis 4 client is accepted as it is (its sendCommand takes a mutable array).
    describeRedisConformance('RedisStore (node-redis 4)', () => harnessOn(shared, client))
  })

  describe('RedisStore on node-redis', () => {
    let client: RedisClientType
    beforeAll(async () => {
      client = await nodeRedisClient()
    })
    afterAll(() => client.close())

    describeRedisConformance('RedisStore (node-redis)', () => harnessOn(shared, client))

    it('claims a new key with one native command and replays with one', async () => {
      const prefix = testPrefix()
      const sent: string[][] = []
      const spy = new Proxy(client, {
        get(target, property) {
          const value = Reflect.get(target, property, target)
          if (property !== 'sendCommand') return typeof value === 'function' ? value.bind(target) : value
          return (args: string[]) => {
            sent.push(args)
            return target.sendCommand(args)
          }
        },
      })
      const store = new RedisStore({ client: spy, prefix })
      try {
        const begun = await store.begin('one', 'fp', LEASE_MS, TTL_MS)
        if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
        await store.complete('one', begun.token, '"done"', TTL_MS)
        expect(await store.begin('one', 'fp', LEASE_MS, TTL_MS)).toMatchObject({
          outcome: 'completed',
          result: '"done"',
        })
        expect(sent.map((args) => args[0])).toEqual(['SET', 'EVALSHA', 'SET'])
        expect(sent[0]?.slice(3)).toEqual(['PX', String(TTL_MS), 'NX', 'GET'])
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    it('names the server and the cause when node-redis is not connected', async () => {
      const { createClient } = await import('redis')
      const closed = createClient({ socket: { host: '127.0.0.1', port: 6379 } })
      const store = new RedisStore({ client: closed, prefix: testPrefix() })
      const failure = store.begin('x', 'fp', LEASE_MS, TTL_MS)
      await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError)
      await expect(failure).rejects.toThrow(/Redis at 127\.0\.0\.1:6379 is unreachable: The client is closed/)
    })
  })

  describe('RedisStore (standalone)', () => {
    const withStore = (test: (store: RedisStore, prefix: string) => Promise<void>) => async () => {
      const prefix = testPrefix()
      const store = new RedisStore({ client: shared, prefix })
      try {
        await test(store, prefix)
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    }

    it(
      'keeps a record as one packed string under a hash-tagged key, with native expiry',
      withStore(async (store, prefix) => {
        const id = '5:scope:order-42'
        const key = `${prefix}{5:scope:order-42}`
        expect(store.key(id)).toBe(key)
        const begun = await store.begin(id, 'fp', 5000, 1000)
        if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
        const running = await store.get(id)
        expect(running).toMatchObject({ state: 'in_progress', fingerprint: 'fp', token: begun.token, attempt: 1 })
        // Claimed by SET NX: durations (lease, kept), times read from the key's expiry on Redis' clock.
        expect(await shared.get(key)).toBe(`q5000,5000,2,fp${begun.token}`)
        expect(running?.updatedAt).toBe(running?.createdAt)
        expect(running?.leaseUntil).toBe((running?.createdAt ?? 0) + 5000)
        expect(Math.abs((running?.leaseUntil ?? 0) - begun.leaseUntil)).toBeLessThan(100)
        // In progress: kept max(ttl, lease), here the 5 s lease.
        expect(Number(await shared.pexpiretime(key))).toBe(running?.leaseUntil)
        expect(running?.expiresAt).toBe(running?.leaseUntil)
        await store.complete(id, begun.token, '{"ok":true}', 60_000)
        const done = await store.get(id)
        expect(await shared.get(key)).toBe(`c1,${done?.createdAt},${done?.updatedAt},,2,fp{"ok":true}`)
        expect(done).toMatchObject({ state: 'completed', token: null, leaseUntil: null, result: '{"ok":true}' })
        // Completed at this process's time, kept ttl from Redis' (one machine here: within 100 ms).
        expect(Math.abs(Number(await shared.pexpiretime(key)) - ((done?.updatedAt ?? 0) + 60_000))).toBeLessThan(100)
        expect(done?.expiresAt).toBe(Number(await shared.pexpiretime(key)))
      }),
    )

    it(
      'escapes "}" and "%" in the hash tag, one key per id',
      withStore(async (store, prefix) => {
        expect(store.key('a}b')).toBe(`${prefix}{a%7Db}`)
        expect(store.key('a%7Db')).toBe(`${prefix}{a%257Db}`)
        expect(store.key('{x}')).toBe(`${prefix}{{x%7D}`)
        for (const id of ['a}b', 'a%7Db', '{x}', '}', '{', '%']) {
          const begun = await store.begin(id, 'fp', LEASE_MS, TTL_MS)
          expect(begun.outcome, id).toBe('acquired')
          if (begun.outcome === 'acquired') await store.complete(id, begun.token, JSON.stringify(id), TTL_MS)
        }
        for (const id of ['a}b', 'a%7Db', '{x}', '}', '{', '%'])
          expect((await store.get(id))?.result).toBe(JSON.stringify(id))
      }),
    )

    it(
      'replays byte-identically whatever the fingerprint holds (its length is counted in bytes)',
      withStore(async (store) => {
        for (const fingerprint of ['é💳,1,', '', ',,,', '\u0000x']) {
          const id = `fp-${JSON.stringify(fingerprint)}`
          const begun = await store.begin(id, fingerprint, LEASE_MS, TTL_MS)
          if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
          await store.complete(id, begun.token, `,${fingerprint}é,`, TTL_MS)
          expect(await store.begin(id, fingerprint, LEASE_MS, TTL_MS)).toMatchObject({
            outcome: 'completed',
            result: `,${fingerprint}é,`,
            attempt: 1,
          })
          expect((await store.get(id))?.fingerprint).toBe(fingerprint)
          expect(await store.begin(id, `${fingerprint}x`, LEASE_MS, TTL_MS)).toEqual({
            outcome: 'mismatch',
            state: 'completed',
          })
        }
      }),
    )

    it(
      'lets Redis expire records itself; sweep validates its limit and returns 0',
      withStore(async (store, prefix) => {
        const begun = await store.begin('gone', 'fp', LEASE_MS, TTL_MS)
        if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
        await store.complete('gone', begun.token, '1', TTL_MS)
        await sleep(TTL_MS + 15)
        expect(await shared.exists(`${prefix}{gone}`)).toBe(0)
        expect(await store.sweep(100)).toBe(0)
        await expect(store.sweep(0)).rejects.toThrow(RangeError)
        await expect(store.sweep(1.5)).rejects.toThrow(RangeError)
      }),
    )

    it('sends a batch as one script, in one round trip', async () => {
      const prefix = testPrefix()
      const { client, calls } = counting(shared)
      const store = new RedisStore({ client, prefix })
      try {
        const items = Array.from({ length: 20 }, (_, i) => ({ id: `batch-${i}`, fingerprint: 'fp' }))
        const begun = await store.beginMany([...items, items[0] as (typeof items)[0]], LEASE_MS, TTL_MS)
        expect(begun.map((r) => r.outcome)).toEqual([...items.map(() => 'acquired'), 'in_progress'])
        expect(calls).toEqual({ call: 1 })
        const done = await store.completeMany(
          begun
            .slice(0, 20)
            .map((r, i) => ({ id: `batch-${i}`, token: r.outcome === 'acquired' ? r.token : '', result: `${i}` })),
          TTL_MS,
        )
        expect(done).toEqual(items.map(() => 'completed'))
        expect(calls).toEqual({ call: 2 })
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    it('merges the completions of one tick into one script; a stale token among them is LEASE_LOST alone', async () => {
      const prefix = testPrefix()
      const { client, calls } = counting(shared)
      const store = new RedisStore({ client, prefix })
      try {
        const ids = Array.from({ length: 8 }, (_, i) => `tick-${i}`)
        const begun = await Promise.all(ids.map((id) => store.begin(id, 'fp', LEASE_MS, TTL_MS)))
        expect(calls).toEqual({ call: 8 })
        const tokens = begun.map((r, i) => (r.outcome === 'acquired' && i !== 3 ? r.token : 'stale'))
        const settled = await Promise.allSettled(
          ids.map((id, i) => store.complete(id, tokens[i] as string, `"${i}"`, TTL_MS)),
        )
        // Eight begins; the first completion finds the store idle and goes alone, the seven others
        // wait for the end of the tick and share one script.
        expect(calls).toEqual({ call: 10 })
        expect(settled.map((s) => s.status)).toEqual(ids.map((_, i) => (i === 3 ? 'rejected' : 'fulfilled')))
        expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'LEASE_LOST' })
        expect(await store.begin('tick-0', 'fp', LEASE_MS, TTL_MS)).toMatchObject({
          outcome: 'completed',
          result: '"0"',
        })
        // A completion alone in its tick is the single-key script, and so is each retention's group.
        const alone = await store.begin('tick-alone', 'fp', LEASE_MS, TTL_MS)
        if (alone.outcome !== 'acquired') throw new Error(alone.outcome)
        await store.complete('tick-alone', alone.token, '"alone"', TTL_MS)
        expect(await store.get('tick-alone')).toMatchObject({ state: 'completed', result: '"alone"' })
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    /** A RedisStore on `shared` that records the scripts it runs (their SHA-1s), in order. */
    const recordingScripts = (prefix: string): { store: RedisStore; scripts: string[] } => {
      const scripts: string[] = []
      const client = new Proxy(shared, {
        get(target, property) {
          const value = Reflect.get(target, property, target)
          if (typeof value !== 'function') return value
          if (property !== 'call') return value.bind(target)
          return (command: string, ...args: unknown[]) => {
            if (command === 'EVALSHA') scripts.push(String(args[0]))
            return value.call(target, command, ...args)
          }
        },
      })
      return { store: new RedisStore({ client, prefix }), scripts }
    }

    it('completes a claim it made with the record built here, after the owner check alone', async () => {
      const prefix = testPrefix()
      const { store, scripts } = recordingScripts(prefix)
      const other = new RedisStore({ client: shared, prefix })
      try {
        const begun = await store.begin('known', 'fp', LEASE_MS, TTL_MS)
        if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
        const before = Date.now()
        await store.complete('known', begun.token, '"a"', 60_000)
        expect(scripts).toEqual([COMPLETE_KNOWN.sha])
        const done = await store.get('known')
        expect(done).toMatchObject({ state: 'completed', attempt: 1, token: null, leaseUntil: null, result: '"a"' })
        expect(await shared.get(store.key('known'))).toBe(`c1,${done?.createdAt},${done?.updatedAt},,2,fp"a"`)
        // Its times by this process's clock (the claim's as begin reported it), its expiry by Redis'.
        expect(done?.createdAt).toBe(begun.leaseUntil - LEASE_MS)
        expect(done?.updatedAt).toBeGreaterThanOrEqual(before)
        expect(Math.abs((done?.expiresAt ?? 0) - ((done?.updatedAt ?? 0) + 60_000))).toBeLessThan(100)

        // Extended meanwhile (here by another store holding the token): still this token's claim.
        const extended = await store.begin('extended', 'fp', LEASE_MS, TTL_MS)
        if (extended.outcome !== 'acquired') throw new Error(extended.outcome)
        await other.extend('extended', extended.token, LEASE_MS * 2)
        await store.complete('extended', extended.token, '"b"', TTL_MS)
        expect(await store.get('extended')).toMatchObject({ state: 'completed', attempt: 1, result: '"b"' })

        // Gone and claimed again by another, or taken over: LEASE_LOST, the new claim untouched.
        const gone = await store.begin('gone', 'fp', LEASE_MS, TTL_MS)
        if (gone.outcome !== 'acquired') throw new Error(gone.outcome)
        await other.delete('gone')
        const again = await other.begin('gone', 'fp', LEASE_MS, TTL_MS)
        if (again.outcome !== 'acquired') throw new Error(again.outcome)
        await expect(store.complete('gone', gone.token, '"c"', TTL_MS)).rejects.toMatchObject({ code: 'LEASE_LOST' })
        expect(await store.get('gone')).toMatchObject({ state: 'in_progress', token: again.token })
        const lapsed = await store.begin('lapsed', 'fp', 50, TTL_MS)
        if (lapsed.outcome !== 'acquired') throw new Error(lapsed.outcome)
        await sleep(80)
        const takeover = await other.begin('lapsed', 'fp', LEASE_MS, TTL_MS)
        expect(takeover).toMatchObject({ outcome: 'acquired', attempt: 2 })
        await expect(store.complete('lapsed', lapsed.token, '"d"', TTL_MS)).rejects.toMatchObject({
          code: 'LEASE_LOST',
        })
        expect(await store.get('lapsed')).toMatchObject({ state: 'in_progress', attempt: 2 })
        // Completed already: a second completion is LEASE_LOST and changes nothing.
        await expect(store.complete('known', begun.token, '"again"', TTL_MS)).rejects.toMatchObject({
          code: 'LEASE_LOST',
        })
        expect(await store.get('known')).toMatchObject({ result: '"a"' })
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    it('completes a batch of claims made by a script the same way, in one script', async () => {
      const prefix = testPrefix()
      const { store, scripts } = recordingScripts(prefix)
      const other = new RedisStore({ client: shared, prefix })
      try {
        const ids = ['as-written', 'extended', 'gone', 'too-large']
        const begun = await store.beginMany(
          ids.map((id) => ({ id, fingerprint: 'fp' })),
          LEASE_MS,
          TTL_MS,
        )
        const tokens = begun.map((r) => (r.outcome === 'acquired' ? r.token : ''))
        const claimed = await store.get('as-written')
        await other.extend('extended', tokens[1] as string, LEASE_MS * 2)
        await other.delete('gone')
        const again = await other.begin('gone', 'fp', LEASE_MS, TTL_MS)
        if (again.outcome !== 'acquired') throw new Error(again.outcome)
        scripts.length = 0
        const results = ['"1"', '"2"', '"3"', 'x'.repeat(store.maxResultBytes + 1)]
        const done = await store.completeMany(
          ids.map((id, i) => ({ id, token: tokens[i] as string, result: results[i] as string })),
          TTL_MS,
        )
        expect(done).toEqual(['completed', 'completed', 'lease_lost', 'too_large'])
        expect(scripts).toEqual([COMPLETE_MANY.sha])
        // Claimed by the script: the completed record keeps the claim's time on Redis' clock.
        const completed = await store.get('as-written')
        expect(completed).toMatchObject({ state: 'completed', result: '"1"', createdAt: claimed?.createdAt })
        expect(await shared.get(store.key('as-written'))).toBe(
          `c1,${completed?.createdAt},${completed?.updatedAt},,2,fp"1"`,
        )
        expect(await store.get('extended')).toMatchObject({ state: 'completed', result: '"2"' })
        expect(await store.get('gone')).toMatchObject({ state: 'in_progress', token: again.token })
        expect(await store.get('too-large')).toMatchObject({ state: 'in_progress', token: tokens[3] })
      } finally {
        await deleteByPrefix(shared, prefix)
      }
    })

    it(
      'recovers from SCRIPT FLUSH (NOSCRIPT) by sending the script again',
      withStore(async (store) => {
        await shared.script('FLUSH')
        const begun = await store.begin('flushed', 'fp', LEASE_MS, TTL_MS)
        expect(begun.outcome).toBe('acquired')
        await shared.script('FLUSH')
        const many = await store.beginMany([{ id: 'flushed-2', fingerprint: 'fp' }], LEASE_MS, TTL_MS)
        expect(many.map((r) => r.outcome)).toEqual(['acquired'])
        await shared.script('FLUSH')
        if (begun.outcome === 'acquired') await store.complete('flushed', begun.token, '"ok"', TTL_MS)
        expect((await store.begin('flushed', 'fp', LEASE_MS, TTL_MS)).outcome).toBe('completed')
      }),
    )

    it('fails fast with STORE_UNAVAILABLE naming host and port when Redis is unreachable at start-up', async () => {
      const client = redisClient(1)
      const store = new RedisStore({ client })
      try {
        const started = Date.now()
        const error = await store.begin('k', 'fp', LEASE_MS, TTL_MS).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as Error).message).toMatch(/^Redis at 127\.0\.0\.1:1 is unreachable: /)
        expect((error as Error).cause).toBeInstanceOf(Error)
        expect(Date.now() - started).toBeLessThan(3000)
        for (const op of [
          store.get('k'),
          store.delete('k'),
          store.complete('k', 't', '1', TTL_MS),
          store.beginMany([{ id: 'k', fingerprint: 'fp' }], LEASE_MS, TTL_MS),
        ]) {
          await expect(op).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: /127\.0\.0\.1:1/ })
        }
      } finally {
        client.disconnect()
      }
    })

    it('creates a client from a factory on first use and quits it on close', async () => {
      let made: Redis | undefined
      const store = new RedisStore({ client: () => (made = redisClient()), prefix: testPrefix() })
      expect(made).toBeUndefined()
      expect(await store.get('nothing')).toBeNull()
      expect(made?.status).toBe('ready')
      await store.close()
      await vi.waitFor(() => expect(made?.status).toBe('end'))
      await expect(store.get('nothing')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    })

    it('leaves a client it was given open on close', async () => {
      const store = new RedisStore({ client: shared, prefix: testPrefix() })
      await store.close()
      expect(shared.status).toBe('ready')
    })

    it('rejects a prefix or an ioredis keyPrefix with braces, and a missing client', () => {
      expect(() => new RedisStore({ client: shared, prefix: 'app{1}:' })).toThrow(TypeError)
      expect(() => new RedisStore({ client: undefined as unknown as Redis })).toThrow(TypeError)
      const braced = redisClient(6379, { keyPrefix: '{app}:', lazyConnect: true })
      expect(() => new RedisStore({ client: braced })).toThrow(/keyPrefix/)
      braced.disconnect()
    })

    it(
      'keeps a completed record with a 60-byte result in a few hundred bytes (MEMORY USAGE)',
      withStore(async (store) => {
        const result = JSON.stringify({ id: 'ch_3PqK9xLmN2', status: 'succeeded', amount: 4200 }) // 57 bytes
        const id = '7:billing:order-2024-000042'
        const fingerprint = 'kq3H0Qm8nQm0l5wz0p7c0oTzqfQyWbQvX4o9rY2sE1g' // a base64url SHA-256, as the core makes
        const begun = await store.begin(id, fingerprint, 30_000, 86_400_000)
        if (begun.outcome !== 'acquired') throw new Error(begun.outcome)
        await store.complete(id, begun.token, result, 86_400_000)
        const bytes = Number(await shared.call('MEMORY', 'USAGE', store.key(id), 'SAMPLES', '0'))
        console.log(
          `MEMORY USAGE of one completed record (key ${store.key(id).length} B, result ${result.length} B): ${bytes} bytes`,
        )
        expect(bytes).toBeGreaterThan(result.length)
        expect(bytes).toBeLessThan(300)
        // A larger result costs its length, not a jump (a hash would turn into a ~600-byte hashtable).
        const large = await store.begin(`${id}-large`, fingerprint, 30_000, 86_400_000)
        if (large.outcome !== 'acquired') throw new Error(large.outcome)
        await store.complete(`${id}-large`, large.token, `${result}${'x'.repeat(100)}`, 86_400_000)
        const largeBytes = Number(await shared.call('MEMORY', 'USAGE', store.key(`${id}-large`), 'SAMPLES', '0'))
        expect(largeBytes - bytes).toBeLessThan(140)
      }),
    )
  })
}
