// The Redis front tier of TieredStore: one string per completed outcome, native expiry,
// fetched with one pipelined GET per id (Cluster-safe: every command touches one key).

import { warnDeprecated } from '../../contract/deprecation.js'
import { StoreClient } from '../../contract/store-client.js'
import { factoryOrClientWith, readStoreOptions } from '../../contract/store-options.js'
import type { RedisCacheClient } from '../../drivers/ioredis.js'
import { StoreUnavailableError } from '../../errors.js'
import type { CompletedEntry, CompletedResultCache } from './result-cache.js'

export type { RedisCacheClient }
/** The pipeline of a RedisCacheClient. */
export type RedisCachePipeline = ReturnType<RedisCacheClient['pipeline']>

interface RedisResultCacheSettings {
  /** Key prefix; the record id follows it. Default `idem:done:`. */
  prefix?: string
  /** @deprecated Pass a factory `client: () => redis` to have the cache quit its client on close(). */
  closeClient?: boolean
}

export type RedisResultCacheOptions = RedisResultCacheSettings &
  (
    | {
        /**
         * An ioredis `Redis` or `Cluster` you own (the cache never closes it); or a factory
         * `() => redis`, called on first use, whose client is the cache's: quit by `close()`.
         */
        client: RedisCacheClient | (() => RedisCacheClient)
        redis?: undefined
      }
    | {
        /** @deprecated Use `client` (same meaning). */
        redis: RedisCacheClient
        client?: undefined
      }
  )

const OPTIONS = {
  store: 'RedisResultCache',
  client: 'an ioredis Redis or Cluster, or a factory () => redis',
  accepts: factoryOrClientWith([]),
  known: ['client', 'prefix', 'closeClient'],
  renamed: { redis: 'client' },
}

/**
 * TieredStore's front tier on Redis: one string per completed outcome, with native expiry.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { RedisResultCache, TieredStore } from 'idem/tiered'
 *
 * const cache = new RedisResultCache({ client: () => new Redis() }) // quit by close()
 * const store = new TieredStore({ primary: postgresStore, cache })
 * ```
 */
export class RedisResultCache implements CompletedResultCache {
  readonly #client: StoreClient<RedisCacheClient>
  readonly #prefix: string

  constructor(options: RedisResultCacheOptions) {
    const o = readStoreOptions<RedisResultCacheSettings & { client: RedisCacheClient | (() => RedisCacheClient) }>(
      options,
      OPTIONS,
    )
    if (o.closeClient !== undefined) {
      warnDeprecated('RedisResultCache option "closeClient"', 'a factory `client: () => redis`, quit by close()')
    }
    this.#prefix = o.prefix ?? 'idem:done:'
    this.#client = new StoreClient<RedisCacheClient>(
      o.client,
      (cause) =>
        new StoreUnavailableError(`RedisResultCache's client factory failed: ${(cause as Error)?.message ?? cause}`, {
          cause,
        }),
      typeof o.client === 'function' || o.closeClient === true,
    )
  }

  get #redis(): RedisCacheClient {
    return this.#client.current ?? this.#client.openSync()
  }

  async getMany(ids: readonly string[]): Promise<(CompletedEntry | null)[]> {
    if (ids.length === 0) return []
    if (ids.length === 1) {
      // The common case, a single begin: a plain GET, cheaper than a pipeline of one (bench/stores.ts).
      const value = await this.#redis.get(this.#prefix + (ids[0] as string))
      return [value === null ? null : decodeEntry(value)]
    }
    const pipeline = this.#redis.pipeline()
    for (const id of ids) pipeline.get(this.#prefix + id)
    const replies = (await pipeline.exec()) ?? []
    return ids.map((_, i) => {
      const [error, value] = replies[i] ?? [null, null]
      if (error !== null) throw error
      return typeof value === 'string' ? decodeEntry(value) : null
    })
  }

  async putMany(entries: readonly { id: string; entry: CompletedEntry; ttlMs: number }[]): Promise<void> {
    const live = entries.filter((e) => e.ttlMs >= 1)
    if (live.length === 0) return
    const pipeline = this.#redis.pipeline()
    for (const { id, entry, ttlMs } of live)
      pipeline.set(this.#prefix + id, encodeEntry(entry), 'PX', Math.floor(ttlMs))
    const replies = (await pipeline.exec()) ?? []
    const failed = replies.find(([error]) => error !== null)
    if (failed) throw failed[0]
  }

  async delete(id: string): Promise<void> {
    await this.#redis.del(this.#prefix + id)
  }

  /** Quit the client if the cache owns it (made by a factory); one passed in is left alone. */
  async close(): Promise<void> {
    await this.#client.close((client) => client.quit())
  }
}

/**
 * `attempt completedAt fingerprintLength fingerprint+result`: three numbers, then the fingerprint
 * and the result back to back, so neither needs escaping and the result stays byte-identical.
 */
export function encodeEntry(entry: CompletedEntry): string {
  return `${entry.attempt} ${entry.completedAt} ${entry.fingerprint.length} ${entry.fingerprint}${entry.result}`
}

export function decodeEntry(value: string): CompletedEntry | null {
  const a = value.indexOf(' ')
  const b = value.indexOf(' ', a + 1)
  const c = value.indexOf(' ', b + 1)
  if (a < 0 || b < 0 || c < 0) return null
  const attempt = Number(value.slice(0, a))
  const completedAt = Number(value.slice(a + 1, b))
  const fpLength = Number(value.slice(b + 1, c))
  if (!Number.isSafeInteger(attempt) || !Number.isSafeInteger(completedAt) || !Number.isSafeInteger(fpLength)) {
    return null
  }
  const start = c + 1
  return {
    attempt,
    completedAt,
    fingerprint: value.slice(start, start + fpLength),
    result: value.slice(start + fpLength),
  }
}
