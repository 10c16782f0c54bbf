// Clients of either Node Redis driver for the tests that run once per driver (the TieredStore's
// Redis cache, the Redis Streams adapter): ioredis and node-redis, configured alike.

import { Redis } from 'ioredis'
import { createClient, type RedisClientType } from 'redis'

export type RedisDriver = 'ioredis' | 'node-redis'
export const REDIS_DRIVERS: readonly RedisDriver[] = ['ioredis', 'node-redis']

/** A client of either driver. */
export type DriverClient = Redis | RedisClientType

export interface DriverClientOptions {
  /** CLIENT SETNAME, on every connection the client (and its duplicates) opens. */
  name?: string
  /**
   * Fail a command at once (node-redis) or after one reconnection attempt (ioredis) while Redis is
   * down, instead of queueing it until Redis is back. Both clients keep reconnecting either way.
   */
  failFast?: boolean
}

/** A client of `driver` on 127.0.0.1:`port`, connected, with its errors silenced (the tests read them from commands). */
export async function driverClient(
  driver: RedisDriver,
  port = 6379,
  options: DriverClientOptions = {},
): Promise<DriverClient> {
  if (driver === 'ioredis') {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      ...(options.name === undefined ? {} : { connectionName: options.name }),
      ...(options.failFast === true ? { maxRetriesPerRequest: 1 } : {}),
    })
    client.on('error', () => {})
    return client
  }
  const client = createClient({
    socket: { host: '127.0.0.1', port, reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 500) },
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.failFast === true ? { disableOfflineQueue: true } : {}),
  })
  client.on('error', () => {})
  await client.connect()
  return client as RedisClientType
}

/** True once the client's connection is up and usable. */
export function isReady(client: DriverClient): boolean {
  return client instanceof Redis ? client.status === 'ready' : client.isReady
}

/** Close the connection at once, whichever the driver (pending commands fail). */
export function destroyClient(client: DriverClient): void {
  if (client instanceof Redis) client.disconnect()
  else if (client.isOpen) client.destroy()
}
