// The subset of ioredis that the Redis Streams adapter uses, so that importing idem/redis-streams
// never loads ioredis: an ioredis `Redis` instance fits these types as it is. A node-redis client is
// wrapped into the same shape (node-redis-stream-client.ts).

import type { RedisArg, RedisConnection } from '../../drivers/ioredis.js'

/** An argument of a Redis command, as ioredis accepts it. */
export type StreamArg = RedisArg

/** A MULTI … EXEC transaction, as `client.multi(commands)` returns it. */
export interface StreamTransaction {
  exec(): Promise<[error: Error | null, result: unknown][] | null>
}

export interface RedisStreamClient extends RedisConnection {
  /** Any command by name: XADD, XREADGROUP, XACK, XAUTOCLAIM, XCLAIM, XPENDING, XGROUP, XINFO, CLIENT. */
  call(...args: [command: string, ...args: StreamArg[]]): Promise<unknown>
  /** Commands (lower-case names, as ioredis' methods) queued into one MULTI … EXEC: run together, or none. */
  multi(commands: StreamArg[][]): StreamTransaction
  /** A new connection with the same options: XREADGROUP BLOCK holds its connection while it waits. */
  duplicate(): RedisStreamClient
}
