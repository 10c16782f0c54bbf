// One way to speak to Redis over either Node client: ioredis (`Redis`, `Cluster`) or node-redis
// (`createClient()`, `createCluster()`). Code above this file sends commands as arrays and gets
// plain replies (strings, integers, arrays, null) whichever client the user has. Imports nothing.
//
// Why it also coalesces: a command written on its own costs a socket write (a syscall) per
// command. node-redis writes all the commands of one tick together; ioredis writes each one at
// once, which made its raw GET half as fast as node-redis' at concurrency 64 here. While the
// connection is busy (replies pending), the link corks an ioredis socket at the first command of
// a tick and uncorks it on the next tick (process.nextTick, before any I/O): the tick's commands
// leave in one write. On an idle connection a command goes straight out: there corking only added
// latency (about 14 µs per GET at concurrency 1, measured here) and had nothing to merge with.

import type { RedisArg, RedisClient } from './ioredis.js'
import type { NodeRedisClient, NodeRedisCluster } from './node-redis.js'

/** A client RedisStore (and the other Redis users) accept: ioredis or node-redis, one node or a Cluster. */
export type AnyRedisClient = RedisClient | NodeRedisClient | NodeRedisCluster

/** A reply or the error that came in its place, per command of a pipeline. */
export type PipelineReply = [error: Error | null, reply: unknown]

export interface RedisLink {
  /** The client as given. */
  readonly client: AnyRedisClient
  readonly driver: 'ioredis' | 'node-redis'
  readonly isCluster: boolean
  /** Key prefix the client itself prepends to keys (ioredis `keyPrefix`), or undefined. */
  readonly keyPrefix: string | undefined
  /** One command (`args[0]` is its name); `key` routes it on a Cluster. */
  send(key: string | undefined, args: readonly RedisArg[]): Promise<unknown>
  /**
   * Several commands for one node, written together, answered in order; a command's error comes
   * back in its place. On a Cluster every command must live on the same node.
   */
  pipeline(commands: readonly (readonly RedisArg[])[]): Promise<PipelineReply[]>
  /** ioredis Cluster: the node ("host:port") serving a slot once the slot map is known. */
  nodeOf(slot: number): string | undefined
  /** True when the error is Redis answering with an error (not the connection failing). */
  isReply(error: unknown): boolean
  /** "Redis at 127.0.0.1:6379" or "Redis Cluster at …", for messages. */
  describe(): string
  /** Ends the connection once pending replies are in; `disconnect` if that fails. */
  quit(): Promise<void>
}

/** The link for `client`, or a TypeError naming what was given when it is neither client. */
export function linkTo(client: AnyRedisClient): RedisLink {
  const c = client as unknown as Record<string, unknown>
  if (typeof c.pipeline === 'function' && typeof c.call === 'function') return new IoredisLink(client as RedisClient)
  if (typeof c.sendCommand === 'function' && 'isOpen' in c) {
    return Array.isArray(c.masters)
      ? new NodeRedisClusterLink(client as NodeRedisCluster)
      : new NodeRedisLink(client as NodeRedisClient)
  }
  throw new TypeError(
    'expected an ioredis Redis or Cluster, or a connected node-redis client or cluster (createClient().connect())',
  )
}

interface Corkable {
  cork(): void
  uncork(): void
}

function uncork(link: IoredisLink, stream: Corkable): void {
  link.corked = false
  stream.uncork()
}

class IoredisLink implements RedisLink {
  readonly client: RedisClient
  readonly driver = 'ioredis'
  readonly isCluster: boolean
  readonly keyPrefix: string | undefined
  corked = false

  constructor(client: RedisClient) {
    this.client = client
    this.isCluster = client.isCluster === true
    const prefix = (client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix
    this.keyPrefix = typeof prefix === 'string' && prefix !== '' ? prefix : undefined
  }

  send(_key: string | undefined, args: readonly RedisArg[]): Promise<unknown> {
    if (!this.corked && !this.isCluster) this.#cork()
    return this.client.call(args[0] as string, ...args.slice(1))
  }

  #cork(): void {
    // Only a busy, connected socket: before 'ready' ioredis queues commands itself and writes them later.
    if ((this.client.commandQueue?.length ?? 1) === 0) return
    const stream = this.client.stream as Corkable | undefined
    if (stream === undefined || this.client.status !== 'ready') return
    stream.cork()
    this.corked = true
    process.nextTick(uncork, this, stream)
  }

  async pipeline(commands: readonly (readonly RedisArg[])[]): Promise<PipelineReply[]> {
    const pipeline = this.client.pipeline()
    for (const [name, ...args] of commands) pipeline.call(name as string, ...args)
    const replies = await pipeline.exec()
    if (replies === null) throw new Error('the pipeline was discarded')
    return replies
  }

  nodeOf(slot: number): string | undefined {
    return this.client.slots?.[slot]?.[0]
  }

  isReply(error: unknown): boolean {
    return (error as { name?: unknown } | null)?.name === 'ReplyError'
  }

  describe(): string {
    if (this.isCluster) {
      const nodes = (this.client as { startupNodes?: unknown }).startupNodes
      return `Redis Cluster at ${Array.isArray(nodes) ? nodes.map((n) => address(n as Address)).join(', ') : 'unknown nodes'}`
    }
    return `Redis at ${address((this.client as { options?: Address }).options ?? {})}`
  }

  async quit(): Promise<void> {
    try {
      await this.client.quit()
    } catch {
      this.client.disconnect()
    }
  }
}

/** node-redis answers with an `ErrorReply` (or a subclass) when the server returns an error. */
function isNodeRedisReply(error: unknown): boolean {
  let proto = error instanceof Error ? Object.getPrototypeOf(error) : null
  while (proto !== null && proto !== Error.prototype) {
    if (proto.constructor?.name === 'ErrorReply') return true
    proto = Object.getPrototypeOf(proto)
  }
  return false
}

const asStrings = (args: readonly RedisArg[]): string[] => args.map(String)

async function settle(replies: Promise<unknown>[]): Promise<PipelineReply[]> {
  const settled = await Promise.allSettled(replies)
  return settled.map((s): PipelineReply => (s.status === 'fulfilled' ? [null, s.value] : [s.reason as Error, null]))
}

async function closeNodeRedis(client: NodeRedisClient | NodeRedisCluster): Promise<void> {
  try {
    if (typeof client.close === 'function') await client.close()
    else await client.quit?.()
  } catch {
    if (typeof client.destroy === 'function') client.destroy()
    else await client.disconnect?.()
  }
}

/** What a node-redis client and cluster share: errors, closing, no node map of their own. */
abstract class NodeRedisLinkBase<C extends NodeRedisClient | NodeRedisCluster> {
  readonly client: C
  readonly driver = 'node-redis'
  readonly keyPrefix = undefined

  constructor(client: C) {
    this.client = client
  }

  nodeOf(): undefined {
    return undefined
  }

  isReply(error: unknown): boolean {
    return isNodeRedisReply(error)
  }

  quit(): Promise<void> {
    return closeNodeRedis(this.client)
  }
}

class NodeRedisLink extends NodeRedisLinkBase<NodeRedisClient> implements RedisLink {
  readonly isCluster = false

  send(_key: string | undefined, args: readonly RedisArg[]): Promise<unknown> {
    return this.client.sendCommand(asStrings(args))
  }

  // node-redis writes the commands of a tick together already: a pipeline is commands sent at once.
  pipeline(commands: readonly (readonly RedisArg[])[]): Promise<PipelineReply[]> {
    return settle(commands.map((args) => this.client.sendCommand(asStrings(args))))
  }

  describe(): string {
    const options = this.client.options
    if (typeof options?.url === 'string') return `Redis at ${options.url.replace(/\/\/[^@/]*@/, '//')}`
    return `Redis at ${address(options?.socket ?? {})}`
  }
}

class NodeRedisClusterLink extends NodeRedisLinkBase<NodeRedisCluster> implements RedisLink {
  readonly isCluster = true

  send(key: string | undefined, args: readonly RedisArg[]): Promise<unknown> {
    return this.client.sendCommand(key, false, asStrings(args))
  }

  // Routed one by one (node-redis batches per node and tick); each command's key is found in it.
  pipeline(commands: readonly (readonly RedisArg[])[]): Promise<PipelineReply[]> {
    return settle(commands.map((args) => this.client.sendCommand(firstKeyOf(args), false, asStrings(args))))
  }

  describe(): string {
    const masters = this.client.masters as { address?: unknown }[]
    return `Redis Cluster at ${masters.map((m) => String(m.address)).join(', ') || 'unknown nodes'}`
  }
}

/** The key a command routes by: the one after the name, or after numkeys for EVAL/EVALSHA. */
function firstKeyOf(args: readonly RedisArg[]): string | undefined {
  const name = String(args[0]).toUpperCase()
  const key = name === 'EVALSHA' || name === 'EVAL' ? args[3] : args[1]
  return key === undefined ? undefined : String(key)
}

interface Address {
  host?: unknown
  port?: unknown
  path?: unknown
}

function address(a: Address | string | number | undefined): string {
  if (typeof a !== 'object' || a === null) return String(a)
  if (typeof a.path === 'string' && a.path !== '') return a.path
  return `${typeof a.host === 'string' ? a.host : 'localhost'}:${typeof a.port === 'number' || typeof a.port === 'string' ? a.port : 6379}`
}
