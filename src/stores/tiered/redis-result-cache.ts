// The Redis front tier of TieredStore: one string per completed outcome, native expiry, on an
// ioredis or node-redis client (through the link in drivers/redis-link.ts). One id is read with a
// plain GET; several with one pipeline of GETs on a single node, or one GET per key sent together
// on a Cluster, whose keys may live on different nodes.

import { warnDeprecated } from '../../contract/deprecation.js'
import { StoreClient } from '../../contract/store-client.js'
import { factoryOrClientWith, readStoreOptions } from '../../contract/store-options.js'
import type { RedisArg, RedisPipeline } from '../../drivers/ioredis.js'
import { type AnyRedisClient, linkTo, type PipelineReply, type RedisLink } from '../../drivers/redis-link.js'
import { StoreUnavailableError } from '../../errors.js'
import type { CompletedEntry, CompletedResultCache } from './result-cache.js'

/**
 * The clients the cache accepts: an ioredis `Redis` or `Cluster`, or a connected node-redis client
 * or cluster (`await createClient().connect()`).
 */
export type RedisCacheClient = AnyRedisClient
/** @deprecated The cache no longer uses a pipeline object of its own; kept for code that named the type. */
export type RedisCachePipeline = Pick<RedisPipeline, 'get' | 'set' | 'exec'>

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
         * An ioredis `Redis` or `Cluster`, or a connected node-redis client or cluster, that you own
         * (the cache never closes it); or a factory `() => client`, called on first use, whose
         * client is the cache's: quit by `close()`. A factory must return the client itself, so a
         * node-redis one must already be connected (see docs/redis.md).
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
  client: 'an ioredis Redis or Cluster, a connected node-redis client or cluster, or a factory () => client',
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
  #link: RedisLink | undefined

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
    // A client passed in is checked now: an object that is neither client fails here, not on first use.
    if (this.#client.current !== undefined) this.#link = linkTo(this.#client.current)
  }

  get #redis(): RedisLink {
    this.#link ??= linkTo(this.#client.openSync())
    return this.#link
  }

  async getMany(ids: readonly string[]): Promise<(CompletedEntry | null)[]> {
    if (ids.length === 0) return []
    const keys = ids.map((id) => this.#prefix + id)
    if (keys.length === 1) {
      // The common case, a single begin: a plain GET, cheaper than a pipeline of one (bench/docs/stores.md).
      const value = await this.#send(keys[0] as string, ['GET', keys[0] as string])
      return [typeof value === 'string' ? decodeEntry(value) : null]
    }
    const replies = await this.#each(keys.map((key) => ['GET', key]))
    return replies.map((value) => (typeof value === 'string' ? decodeEntry(value) : null))
  }

  async putMany(entries: readonly { id: string; entry: CompletedEntry; ttlMs: number }[]): Promise<void> {
    const live = entries.filter((e) => e.ttlMs >= 1)
    if (live.length === 0) return
    await this.#each(
      live.map(({ id, entry, ttlMs }) => ['SET', this.#prefix + id, encodeEntry(entry), 'PX', Math.floor(ttlMs)]),
    )
  }

  async delete(id: string): Promise<void> {
    const key = this.#prefix + id
    await this.#send(key, ['DEL', key])
  }

  /** Quit the client if the cache owns it (made by a factory); one passed in is left alone. */
  async close(): Promise<void> {
    await this.#client.close((client) => (this.#link ?? linkTo(client)).quit())
  }

  async #send(key: string, args: RedisArg[]): Promise<unknown> {
    const link = this.#redis
    try {
      return await link.send(key, args)
    } catch (error) {
      throw unavailable(link, error)
    }
  }

  /**
   * Commands on one key each (`args[1]`), answered in order; the first failure throws. One pipeline
   * on a single node; on a Cluster each command goes alone (sent together), because an ioredis
   * Cluster pipeline refuses keys served by different nodes.
   */
  async #each(commands: RedisArg[][]): Promise<unknown[]> {
    const link = this.#redis
    let replies: PipelineReply[]
    try {
      replies = link.isCluster
        ? await Promise.all(
            commands.map((args) =>
              link.send(String(args[1]), args).then(
                (reply): PipelineReply => [null, reply],
                (error: unknown): PipelineReply => [error as Error, null],
              ),
            ),
          )
        : await link.pipeline(commands)
    } catch (error) {
      throw unavailable(link, error)
    }
    return replies.map(([error, reply]) => {
      if (error !== null) throw unavailable(link, error)
      return reply
    })
  }
}

/**
 * A driver error as StoreUnavailableError naming the server, the driver's error as cause: Redis
 * answering with an error (OOM, LOADING…), or the connection failing (refused, closed, given up).
 */
function unavailable(link: RedisLink, error: unknown): StoreUnavailableError {
  const message = error instanceof Error ? error.message : String(error)
  const what = link.isReply(error) ? 'answered with an error' : 'is unreachable'
  return new StoreUnavailableError(`${link.describe()} ${what}: ${message}`, { cause: error })
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
