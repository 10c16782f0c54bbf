// The connection the Redis Streams loop blocks on (XREADGROUP BLOCK holds its connection): a
// duplicate of the application's client, whose errors reach the application's 'error' listeners.

import type { RedisStreamClient } from './redis-streams-driver.js'

/** Enough of an EventEmitter (an ioredis client) to pass a connection's errors on. */
interface Emitter {
  on(event: 'error', listener: (error: Error) => void): unknown
  emit(event: 'error', error: Error): boolean
  listenerCount(event: 'error'): number
}

const isEmitter = (value: unknown): value is Emitter =>
  typeof (value as Emitter).on === 'function' &&
  typeof (value as Emitter).emit === 'function' &&
  typeof (value as Emitter).listenerCount === 'function'

/**
 * The blocking reader's own connection, a duplicate of `client`. An ioredis duplicate has no
 * 'error' listener of its own, so ioredis printed "Unhandled error event" on every reset of it:
 * its errors go to the client's listeners instead, as the node-redis wrapper's duplicate does
 * (commands still reject with them, and the loop reconnects).
 */
export function readConnectionOf(client: RedisStreamClient): RedisStreamClient {
  const reader = client.duplicate()
  if (isEmitter(reader) && isEmitter(client) && reader !== client) {
    reader.on('error', (error) => {
      if (client.listenerCount('error') > 0) client.emit('error', error)
    })
  }
  return reader
}
