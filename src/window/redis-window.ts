// The shared window store on Redis: one key per event, `SET key 1 PX window NX`, all of a batch's
// commands written in one pipeline (one round trip). SET NX is atomic, so of two consumers marking
// the same id at once exactly one gets OK ("new"); PX makes Redis drop the key when the window
// ends, so the keyspace holds the events of one window and no sweep is needed. A sorted set per
// source (ZADD NX + ZREMRANGEBYSCORE in a script) would need a script per batch, an expiry per
// source key, and is only trimmed when its source writes again; it also stores each id with a
// score in a skiplist once past the listpack limit. docs/window.md gives the measured bytes.

import type { RedisArg } from '../drivers/ioredis.js'
import { type AnyRedisClient, linkTo, type RedisLink } from '../drivers/redis-link.js'
import { StoreUnavailableError } from '../errors.js'
import { entryKey, type WindowEntry, type WindowStore } from './window.js'

export interface RedisWindowOptions {
  /** ioredis (Redis or Cluster) or node-redis (client or cluster), connected. */
  client: AnyRedisClient
  /** Prepended to every key. Default 'idem:window:'. */
  prefix?: string
}

export class RedisWindowStore implements WindowStore {
  readonly #link: RedisLink
  readonly #prefix: string

  constructor(options: RedisWindowOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('redisWindow needs { client }')
    this.#link = linkTo(options.client)
    this.#prefix = options.prefix ?? 'idem:window:'
  }

  /** The Redis key of an entry (for tests and tooling). */
  keyOf(entry: WindowEntry): string {
    return this.#prefix + entryKey(entry)
  }

  async mark(entries: readonly WindowEntry[], windowMs: number): Promise<boolean[]> {
    const px = String(windowMs)
    const commands = entries.map((entry): RedisArg[] => ['SET', this.keyOf(entry), '1', 'PX', px, 'NX'])
    // SET NX answers OK when it set the key (first sight), nil when the key was there (a repeat).
    return (await this.#run(commands)).map((reply) => reply === null)
  }

  async forget(entries: readonly WindowEntry[]): Promise<void> {
    await this.#run(entries.map((entry): RedisArg[] => ['DEL', this.keyOf(entry)]))
  }

  /** The commands in one round trip; any failure is the store's (fail closed: nothing is reported new). */
  async #run(commands: readonly RedisArg[][]): Promise<unknown[]> {
    try {
      // A Cluster spreads the keys over nodes, and a pipeline must stay on one: send each (the
      // link still writes a tick's commands together per node).
      if (this.#link.isCluster || commands.length === 1) {
        return await Promise.all(commands.map((command) => this.#link.send(command[1] as string, command)))
      }
      const replies = await this.#link.pipeline(commands)
      return replies.map(([error, reply]) => {
        if (error !== null) throw error
        return reply
      })
    } catch (error) {
      if (this.#link.isReply(error)) throw error
      throw new StoreUnavailableError(
        `The dedup window's ${this.#link.describe()} is unreachable: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      )
    }
  }
}

/** A window store on Redis, shared by every consumer that uses the same client's server and prefix. */
export function redisWindow(options: RedisWindowOptions): RedisWindowStore {
  return new RedisWindowStore(options)
}
