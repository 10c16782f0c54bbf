// The subset of ioredis' Redis and Cluster that RedisStore uses, so that importing the store never
// loads ioredis: an ioredis `Redis` or `Cluster` instance fits these types as it is.

/** An argument of a Redis command, as ioredis accepts it. */
export type RedisArg = string | number

/** A pipeline: commands queued locally, written together, answered in order by `exec`. */
export interface RedisPipeline {
  evalsha(sha1: string, numkeys: number, ...args: RedisArg[]): unknown
  eval(script: string, numkeys: number, ...args: RedisArg[]): unknown
  exec(): Promise<[error: Error | null, result: unknown][] | null>
}

export interface RedisClient {
  evalsha(sha1: string, numkeys: number, ...args: RedisArg[]): Promise<unknown>
  eval(script: string, numkeys: number, ...args: RedisArg[]): Promise<unknown>
  del(key: string): Promise<number>
  pipeline(): RedisPipeline
  quit(): Promise<unknown>
  disconnect(): void
  /** ioredis' connection status: 'wait', 'connecting', 'connect', 'ready', 'reconnecting', 'close', 'end'… */
  readonly status: string
  /** True on an ioredis `Cluster`. */
  readonly isCluster?: boolean
  /** Cluster only: for each of the 16384 slots, the node keys ("host:port") serving it, master first. */
  readonly slots?: readonly (readonly string[])[]
}
