// A node-redis client (`redis` / `@redis/client`, `createClient()`) as the RedisStreamClient the
// adapter speaks to, so that the rest of the adapter knows one shape: commands through
// `sendCommand` with string arguments, MULTI through `multi().addCommand().exec()` with each
// command's error in its place, and `duplicate()` connected on first use. Chosen by
// `streamClientOf`, at the options boundary. Loads no driver.

import type { NodeRedisClient } from '../../drivers/node-redis.js'
import { linkTo, type RedisLink } from '../../drivers/redis-link.js'
import type { RedisStreamClient, StreamArg, StreamTransaction } from './redis-streams-driver.js'

/** A node-redis MULTI, as `client.multi()` returns it. */
export interface NodeRedisStreamMulti {
  addCommand(args: string[]): unknown
  exec(): Promise<unknown>
}

/** The part of a node-redis client (versions 4 to 6) the Redis Streams adapter uses; connect it first. */
export interface NodeRedisStreamClient extends NodeRedisClient {
  connect(): Promise<unknown>
  multi(): NodeRedisStreamMulti
  /** A new client with the same options, not connected. */
  duplicate(): NodeRedisStreamClient
  on(event: 'error', listener: (error: Error) => void): unknown
  emit(event: 'error', error: unknown): boolean
  listenerCount(event: 'error'): number
}

/** What the adapter's `client` and `readClient` options take: an ioredis `Redis` or a node-redis client. */
export type AnyRedisStreamClient = RedisStreamClient | NodeRedisStreamClient

/**
 * The client as the adapter uses it: an ioredis one as it is, a node-redis one wrapped. A TypeError
 * for anything else, and for a node-redis cluster (the adapter's commands are sent unrouted).
 */
export function streamClientOf(client: AnyRedisStreamClient): RedisStreamClient {
  const c = client as unknown as Record<string, unknown>
  if (typeof c.call === 'function') return client as RedisStreamClient
  if (typeof c.sendCommand === 'function' && 'isOpen' in c) {
    if (Array.isArray(c.masters)) {
      throw new TypeError('the Redis Streams adapter takes a node-redis client (createClient()), not a cluster')
    }
    return new NodeRedisStream(client as NodeRedisStreamClient, false)
  }
  throw new TypeError('expected an ioredis Redis or a node-redis client (createClient())')
}

class NodeRedisStream implements RedisStreamClient {
  readonly #client: NodeRedisStreamClient
  readonly #link: RedisLink
  /**
   * A duplicate this wrapper made: connected on first use, so that `duplicate()` stays synchronous,
   * and connected again if its connection closed for good (a node-redis client whose
   * reconnectStrategy gave up stays closed). A client you pass is never connected here.
   */
  readonly #lazy: boolean
  #connecting: Promise<unknown> | undefined
  /** Set by quit() and disconnect(): a closed duplicate is not opened again. */
  #ended = false

  constructor(client: NodeRedisStreamClient, lazy: boolean) {
    this.#client = client
    this.#link = linkTo(client)
    this.#lazy = lazy
  }

  async call(...args: [command: string, ...args: StreamArg[]]): Promise<unknown> {
    await this.#open()
    return replyOf(args[0], await this.#link.send(undefined, args))
  }

  multi(commands: StreamArg[][]): StreamTransaction {
    return {
      exec: async () => {
        await this.#open()
        const multi = this.#client.multi()
        for (const command of commands) multi.addCommand(command.map(String))
        let replies: unknown
        try {
          replies = await multi.exec()
        } catch (error) {
          // node-redis 5 and later reject the whole EXEC when one command failed inside it, with
          // every reply (the failed ones as errors) in `replies`; node-redis 4 resolves with them.
          const all = (error as { replies?: unknown } | null)?.replies
          if (!Array.isArray(all)) throw error
          replies = all
        }
        return (replies as unknown[]).map((reply): [Error | null, unknown] =>
          reply instanceof Error ? [reply, null] : [null, reply],
        )
      },
    }
  }

  duplicate(): RedisStreamClient {
    const copy = this.#client.duplicate()
    // Its connection errors go to your client's 'error' listeners; without any, node-redis would
    // throw them (an EventEmitter 'error' with no listener). Commands still reject with them.
    copy.on('error', (error) => {
      if (this.#client.listenerCount('error') > 0) this.#client.emit('error', error)
    })
    return new NodeRedisStream(copy, true)
  }

  async quit(): Promise<unknown> {
    this.#ended = true
    await this.#connecting?.catch(() => {})
    if (this.#client.isOpen) await this.#link.quit()
    return 'OK'
  }

  disconnect(): void {
    this.#ended = true
    if (!this.#client.isOpen) return
    if (typeof this.#client.destroy === 'function') this.#client.destroy()
    else void this.#client.disconnect?.()?.catch(() => {})
  }

  #open(): Promise<unknown> | undefined {
    if (!this.#lazy || this.#ended || this.#client.isOpen) return undefined
    this.#connecting ??= this.#client.connect().finally(() => {
      this.#connecting = undefined
    })
    return this.#connecting
  }
}

/**
 * XREAD and XREADGROUP answer a map of stream name to entries over RESP3 (node-redis 6's default),
 * which node-redis hands over as an object (or a Map); the adapter reads the RESP2 shape,
 * `[[stream, entries]]`, which RESP2 clients and ioredis give.
 */
function replyOf(command: string, reply: unknown): unknown {
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) return reply
  const name = command.toUpperCase()
  if (name !== 'XREADGROUP' && name !== 'XREAD') return reply
  return reply instanceof Map ? [...reply] : Object.entries(reply)
}
