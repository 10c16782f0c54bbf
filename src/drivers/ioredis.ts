// The subset of ioredis that Idem uses (RedisStore, TieredStore's Redis cache, the Redis Streams
// broker), so that importing any of them never loads ioredis: an ioredis `Redis` (or, where said,
// `Cluster`) instance fits these types as it is. Imports nothing.

/** An argument of a Redis command, as ioredis accepts it. */
export type RedisArg = string | number

/** A pipeline: commands queued locally, written together, answered in order by `exec`. */
export interface RedisPipeline {
  /** Any command by name. */
  call(command: string, ...args: RedisArg[]): unknown
  get(key: string): unknown
  set(key: string, value: string, px: 'PX', ms: number): unknown
  exec(): Promise<[error: Error | null, result: unknown][] | null>
}

/** What every Idem user of ioredis needs: closing the connection it owns. */
export interface RedisConnection {
  /** Ends the connection once pending replies are in. */
  quit(): Promise<unknown>
  /** Ends the connection at once. */
  disconnect(): void
}

/** An ioredis `Redis` or `Cluster`, as the stores use it. */
export interface RedisClient extends RedisConnection {
  /** Any command by name, answered like the named method would be. */
  call(command: string, ...args: RedisArg[]): Promise<unknown>
  pipeline(): Pick<RedisPipeline, 'call' | 'exec'>
  /** ioredis' connection status: 'wait', 'connecting', 'connect', 'ready', 'reconnecting', 'close', 'end'… */
  readonly status: string
  /** The connection's socket (a `Redis`, not a `Cluster`); corked to write a tick's commands at once. */
  readonly stream?: unknown
  /** Commands written and waiting for their reply (a `Redis`): a busy connection is worth corking. */
  readonly commandQueue?: { readonly length: number }
  /** True on an ioredis `Cluster`. */
  readonly isCluster?: boolean
  /** Cluster only: for each of the 16384 slots, the node keys ("host:port") serving it, master first. */
  readonly slots?: readonly (readonly string[])[]
}
