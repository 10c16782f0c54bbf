import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isolatedName, requireService, SERVICES } from '../../test/services.js'
import { startPrivateRedis } from '../../test/support/gateway/private-redis.test-helper.js'
import { StoreUnavailableError } from '../errors.js'
import type { GatewayConfig } from './config/schema.js'
import { importDriver, MissingDriverError, type OpenStores, openStores } from './open-stores.js'
import { createRateLimiter } from './rate-limiter.js'

const BREAKER: GatewayConfig['breaker'] = { failures: 3, halfOpenAfter: 1000 }
/** Fixed table names: ensureSchema() is idempotent, and every test uses ids of its own. */
const TABLE = 'idem_gateway_test'

/** A claim and its completion through the opened store, then a replay: the store works end to end. */
async function roundTrip(stores: OpenStores, name: string): Promise<void> {
  const { store } = stores.get(name)
  const id = isolatedName('gw')
  const claim = await store.begin(id, 'fp', 10_000, 60_000)
  if (claim.outcome !== 'acquired') throw new Error(`expected acquired, got ${claim.outcome}`)
  await store.complete(id, claim.token, '"done"', 60_000)
  expect(await store.begin(id, 'fp', 10_000, 60_000)).toMatchObject({ outcome: 'completed', result: '"done"' })
}

async function openFailure(stores: GatewayConfig['stores']): Promise<Error> {
  return openStores(stores, BREAKER).then(
    async (opened) => {
      await opened.close()
      throw new Error('expected openStores to fail')
    },
    (error: unknown) => error as Error,
  )
}

describe('openStores: memory and SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idem-gateway-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('opens them, each behind a breaker with a per-process rate-limit backend, and closes them', async () => {
    const path = join(dir, 'records.db')
    const stores = await openStores({ mem: { type: 'memory' }, lite: { type: 'sqlite', path } }, BREAKER)
    expect(stores.names().sort()).toEqual(['lite', 'mem'])
    await roundTrip(stores, 'mem')
    await roundTrip(stores, 'lite')
    expect(existsSync(path)).toBe(true)
    for (const name of ['mem', 'lite']) {
      const open = stores.get(name)
      expect(open).toMatchObject({ name, backend: { type: 'memory' } })
      expect(open.store.name).toBe(name)
      expect(open.store.state).toBe('closed')
    }
    expect(stores.get('lite').type).toBe('sqlite')
    expect(() => stores.get('nope')).toThrow('No store named "nope" (stores: mem, lite)')

    await stores.close()
    await stores.close()
    const closed = await stores
      .get('lite')
      .store.get('x')
      .catch((e: unknown) => e)
    expect(closed).toBeInstanceOf(StoreUnavailableError)
    expect((closed as Error).message).toMatch(/closed/)
  })

  it('a SQLite path that cannot be opened is a clear error naming the store', async () => {
    const error = await openFailure({ lite: { type: 'sqlite', path: join(dir, 'no-such-dir', 'x.db') } })
    expect(error.message).toMatch(/^Store "lite" \(sqlite at .*no-such-dir.*\) could not be opened: /)
  })

  it('a driver that is not installed is named, with the command that installs it', async () => {
    const error = await importDriver(
      () => import(/* @vite-ignore */ String('idem-no-such-driver')),
      'idem-no-such-driver',
      'main',
      'redis',
    ).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MissingDriverError)
    expect((error as Error).message).toBe(
      'Store "main" (redis) needs the npm package "idem-no-such-driver", which is not installed: npm install idem-no-such-driver',
    )
    // Any other failure of the import is not mistaken for a missing package.
    const broken = new Error('boom')
    expect(await importDriver(() => Promise.reject(broken), 'pg', 'main', 'postgres').catch((e: unknown) => e)).toBe(
      broken,
    )
  })
})

if (await requireService('Redis', SERVICES.Redis.port)) {
  describe('openStores: Redis', () => {
    it('connects before answering, so the first call works though the offline queue is off; close() quits the client', async () => {
      const stores = await openStores(
        { r: { type: 'redis', url: SERVICES.Redis.url, prefix: 'idem-gw-test:' } },
        BREAKER,
      )
      const { backend } = stores.get('r')
      if (backend.type !== 'redis') throw new Error(backend.type)
      expect(backend.client.status).toBe('ready')
      await roundTrip(stores, 'r')
      // The rate-limit backend is the same client, counters under the store's prefix.
      expect(backend.prefix).toBe('idem-gw-test:rate:')
      const limiter = createRateLimiter(isolatedName('route'), { requests: 1, per: 1000 }, backend)
      expect((await limiter.consume('alice')).allowed).toBe(true)
      await stores.close()
      expect(backend.client.status).toBe('end')
    })

    it('closes at once when its Redis has gone down meanwhile (no QUIT that nobody answers)', async () => {
      const redis = await startPrivateRedis()
      try {
        const stores = await openStores({ r: { type: 'redis', url: redis.url } }, BREAKER)
        await roundTrip(stores, 'r')
        await redis.kill()
        const started = Date.now()
        await stores.close()
        expect(Date.now() - started).toBeLessThan(3_000)
      } finally {
        await redis.stop()
      }
    })

    it('a Redis that cannot be reached fails openStores, naming the store, the URL (no password) and the cause', async () => {
      const error = await openFailure({
        mem: { type: 'memory' },
        r: { type: 'redis', url: 'redis://:hunter2@127.0.0.1:1/0' },
      })
      expect(error.message).toMatch(/^Store "r" \(redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0\) could not be opened: /)
      expect(error.message).toContain('ECONNREFUSED')
      expect(error.message).not.toContain('hunter2')
    })
  })
}

if (await requireService('PostgreSQL', SERVICES.PostgreSQL.port)) {
  describe('openStores: PostgreSQL', () => {
    it('opens the pool, creates the schema, and ends the pool on close()', async () => {
      const stores = await openStores({ pg: { type: 'postgres', url: SERVICES.PostgreSQL.url, table: TABLE } }, BREAKER)
      const { backend } = stores.get('pg')
      if (backend.type !== 'postgres') throw new Error(backend.type)
      await roundTrip(stores, 'pg')
      await stores.close()
      expect(backend.pool.ended).toBe(true)
    })

    it('a PostgreSQL that cannot be reached is a clear error', async () => {
      const error = await openFailure({ pg: { type: 'postgres', url: 'postgres://postgres:hunter2@127.0.0.1:1/test' } })
      expect(error.message).toMatch(
        /^Store "pg" \(postgres at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test\) could not be opened: PostgreSQL at 127\.0\.0\.1:1 is unreachable/,
      )
    })
  })
}

if (await requireService('MariaDB', SERVICES.MariaDB.port)) {
  describe('openStores: MySQL/MariaDB', () => {
    it('opens the pool from a mysql:// or mariadb:// URL, creates the schema, and ends the pool on close()', async () => {
      const mariadbUrl = SERVICES.MariaDB.url.replace(/^mysql:/, 'mariadb:')
      const stores = await openStores(
        {
          my: { type: 'mysql', url: SERVICES.MariaDB.url, table: TABLE },
          maria: { type: 'mysql', url: mariadbUrl, table: TABLE },
        },
        BREAKER,
      )
      await roundTrip(stores, 'my')
      await roundTrip(stores, 'maria')
      const { backend } = stores.get('my')
      if (backend.type !== 'mysql') throw new Error(backend.type)
      await stores.close()
      await expect(backend.pool.query('SELECT 1')).rejects.toThrow(/closed/i)
    })

    it('a MySQL that cannot be reached is a clear error', async () => {
      const error = await openFailure({ my: { type: 'mysql', url: 'mysql://root@127.0.0.1:1/test' } })
      expect(error.message).toMatch(
        /^Store "my" \(mysql at mysql:\/\/root@127\.0\.0\.1:1\/test\) could not be opened: /,
      )
      expect(error.message).toMatch(/ECONNREFUSED|unreachable/)
    })
  })
}
