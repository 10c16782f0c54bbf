// One construction rule for every store: the driver object is `client`, an unknown or missing
// option is named in a TypeError, renamed options still work with one deprecation warning, and an
// instance passed in stays the caller's while a factory's client is closed by close().

import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from './memory/memory-store.js'
import { MysqlStore } from './mysql/mysql-store.js'
import { PostgresStore } from './postgres/postgres-store.js'
import { RedisStore } from './redis/redis-store.js'
import { SqliteStore } from './sqlite/sqlite-store.js'
import { RedisResultCache } from './tiered/redis-result-cache.js'
import { TieredStore } from './tiered/tiered-store.js'

type Build = (options: unknown) => unknown
const build =
  <T>(Store: new (options: T) => unknown): Build =>
  (options) =>
    new Store(options as T)

const pgPool = () => ({ query: async () => ({ rows: [], rowCount: 0 }), end: vi.fn(async () => {}) })
const mysqlPool = () => ({ query: async () => [[], []] as [unknown, unknown], end: vi.fn(async () => {}) })
const redisClient = () => ({
  call: vi.fn(async () => null),
  pipeline: vi.fn(),
  quit: vi.fn(async () => 'OK'),
  disconnect: vi.fn(),
  status: 'ready',
})

const stores: { name: string; build: Build; needs: RegExp }[] = [
  { name: 'SqliteStore', build: build(SqliteStore), needs: /a better-sqlite3 Database or a file name/ },
  { name: 'PostgresStore', build: build(PostgresStore), needs: /a pg Pool or Client/ },
  { name: 'MysqlStore', build: build(MysqlStore), needs: /a mysql2\/promise Pool or Connection/ },
  { name: 'RedisStore', build: build(RedisStore), needs: /an ioredis Redis or Cluster/ },
  { name: 'RedisResultCache', build: build(RedisResultCache), needs: /an ioredis Redis or Cluster/ },
]

describe('store options', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  for (const { name, build, needs } of stores) {
    it(`${name} says it needs { client } when given an unknown option instead`, () => {
      expect(() => build({ path: 'idem.db' })).toThrow(TypeError)
      expect(() => build({ path: 'idem.db' })).toThrow(
        new RegExp(`^${name} needs \\{ client \\}: .*; got unknown option "path"$`),
      )
      expect(() => build({ path: 'idem.db' })).toThrow(needs)
    })

    it(`${name} says it needs { client } when given nothing or no client`, () => {
      expect(() => build(undefined)).toThrow(new RegExp(`^${name} needs \\{ client \\}: .*; got nothing$`))
      expect(() => build({})).toThrow(new RegExp(`^${name} needs \\{ client \\}: .*; got no client$`))
      expect(() => build({ client: null })).toThrow(TypeError)
    })
  }

  it('names an unknown option next to a client, and lists the options the store takes', () => {
    expect(() => new PostgresStore({ client: pgPool(), tabel: 'x' } as never)).toThrow(
      'PostgresStore got unknown option "tabel"; it takes client, schema, table, maxResultBytes',
    )
    expect(() => new MemoryStore({ clok: Date.now } as never)).toThrow(/MemoryStore got unknown option "clok"/)
  })

  it('refuses a client of the wrong shape', () => {
    expect(() => new SqliteStore({ client: 42 as never })).toThrow(
      /SqliteStore needs \{ client \}.*got client = number 42/,
    )
    expect(() => new PostgresStore({ client: {} as never })).toThrow(/PostgresStore needs \{ client \}/)
  })

  it('TieredStore says it needs { primary, cache }', () => {
    expect(() => new TieredStore({} as never)).toThrow(
      /^TieredStore needs \{ primary, cache \}: .*; got no primary and no cache$/,
    )
    expect(() => new TieredStore({ primary: new MemoryStore() } as never)).toThrow(/got no cache$/)
  })

  it('checks maxResultBytes as a positive integer, and exposes it on every store', () => {
    expect(() => new MemoryStore({ maxResultBytes: 0 })).toThrow('maxResultBytes must be a positive integer, got 0')
    expect(() => new PostgresStore({ client: pgPool(), maxResultBytes: 1.5 })).toThrow(RangeError)
    expect(new MemoryStore().maxResultBytes).toBe(1024 * 1024)
    expect(new SqliteStore({ client: ':memory:', maxResultBytes: 10 }).maxResultBytes).toBe(10)
    expect(new PostgresStore({ client: pgPool(), maxResultBytes: 11 }).maxResultBytes).toBe(11)
    expect(new MysqlStore({ client: mysqlPool(), maxResultBytes: 12 }).maxResultBytes).toBe(12)
    expect(new RedisStore({ client: redisClient() as never, maxResultBytes: 13 }).maxResultBytes).toBe(13)
    const primary = new MemoryStore({ maxResultBytes: 14 })
    const cache = new RedisResultCache({ client: redisClient() as never })
    expect(new TieredStore({ primary, cache }).maxResultBytes).toBe(14)
  })

  it('fails every operation of a closed store with one STORE_UNAVAILABLE message', async () => {
    const store = new PostgresStore({ client: pgPool() })
    await store.close()
    await expect(store.get('k')).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      message: 'PostgresStore ("public"."idem_records") is closed: create a new store to go on',
    })
    const memory = new MemoryStore()
    await memory.close()
    await expect(memory.begin('k', 'fp', 1000, 5000)).rejects.toThrow('MemoryStore is closed')
  })

  it('takes SqliteStore busyTimeout as a duration (0 fails at once)', async () => {
    const timeoutOf = (store: SqliteStore) => store.db.pragma('busy_timeout', { simple: true })
    const stores = [
      new SqliteStore({ client: ':memory:', busyTimeout: '2s' }),
      new SqliteStore({ client: ':memory:', busyTimeout: 0 }),
      new SqliteStore({ client: ':memory:' }),
    ]
    expect(stores.map(timeoutOf)).toEqual([2000, 0, 5000])
    expect(() => new SqliteStore({ client: ':memory:', busyTimeout: 'soon' })).toThrow(/Invalid busyTimeout "soon"/)
    await Promise.all(stores.map((store) => store.close()))
  })

  it('rejects bad arguments (never throws synchronously)', () => {
    const store = new MemoryStore()
    const begun = store.begin('', 'fp', 1000, 5000)
    expect(begun).toBeInstanceOf(Promise)
    return expect(begun).rejects.toThrow(TypeError)
  })
})

describe('renamed store options', () => {
  it('keeps the old names working, with one deprecation warning per name', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const pool = pgPool()
    const pg = new PostgresStore({ pool })
    new PostgresStore({ pool })
    expect(await pg.get('k')).toBeNull()
    const sqlite = new SqliteStore({ database: ':memory:', busyTimeoutMs: 100 })
    expect(await sqlite.get('k')).toBeNull()
    expect(sqlite.db.pragma('busy_timeout', { simple: true })).toBe(100)
    const redis = redisClient()
    const cache = new RedisResultCache({ redis: redis as never, closeClient: true })
    await cache.close()
    expect(redis.quit).toHaveBeenCalledTimes(1)
    const messages = warn.mock.calls.map(([message]) => String(message))
    expect(messages).toEqual(
      expect.arrayContaining([
        'PostgresStore option "pool" is deprecated: use "client" instead',
        'SqliteStore option "database" is deprecated: use "client" instead',
        'SqliteStore option "busyTimeoutMs" is deprecated: use "busyTimeout" instead',
        'RedisResultCache option "redis" is deprecated: use "client" instead',
      ]),
    )
    expect(messages.filter((m) => m.startsWith('PostgresStore option "pool"'))).toHaveLength(1)
    for (const [, options] of warn.mock.calls) {
      expect(options).toMatchObject({ type: 'DeprecationWarning', code: 'IDEM_DEPRECATED' })
    }
    await Promise.all([pg.close(), sqlite.close()])
    expect(pool.end).not.toHaveBeenCalled()
  })
})

describe('client ownership', () => {
  it('SqliteStore closes a database it opened from a file name or a factory, never one passed in', async () => {
    const given = new Database(':memory:')
    await new SqliteStore({ client: given }).close()
    expect(given.open).toBe(true)
    let made: Database.Database | undefined
    await new SqliteStore({ client: () => (made = new Database(':memory:')) }).close()
    expect(made?.open).toBe(false)
    const named = new SqliteStore({ client: ':memory:' })
    await named.close()
    expect(named.db.open).toBe(false)
    given.close()
  })

  it("a factory given under an old name stays the caller's, as before", async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    let made: Database.Database | undefined
    await new SqliteStore({ database: () => (made = new Database(':memory:')) }).close()
    expect(made?.open).toBe(true)
    made?.close()
    vi.restoreAllMocks()
  })

  it('PostgresStore and MysqlStore end a pool made by their factory, never one passed in', async () => {
    const given = pgPool()
    await new PostgresStore({ client: given }).close()
    expect(given.end).not.toHaveBeenCalled()
    const made = pgPool()
    const pg = new PostgresStore({ client: () => made })
    await pg.get('k')
    await pg.close()
    expect(made.end).toHaveBeenCalledTimes(1)
    const mysqlGiven = mysqlPool()
    await new MysqlStore({ client: mysqlGiven }).close()
    expect(mysqlGiven.end).not.toHaveBeenCalled()
  })

  it('RedisResultCache quits a client made by its factory on first use, never one passed in', async () => {
    const given = redisClient()
    await new RedisResultCache({ client: given as never }).close()
    expect(given.quit).not.toHaveBeenCalled()
    const made = { ...redisClient(), get: vi.fn(async () => null) }
    const factory = vi.fn(() => made)
    const cache = new RedisResultCache({ client: factory as never })
    expect(factory).not.toHaveBeenCalled()
    expect(await cache.getMany(['k'])).toEqual([null])
    await cache.close()
    expect(made.quit).toHaveBeenCalledTimes(1)
  })
})
