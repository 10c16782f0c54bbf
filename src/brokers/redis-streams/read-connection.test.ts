import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readConnectionOf } from './read-connection.js'
import type { RedisStreamClient } from './redis-streams-driver.js'

/** A loopback port nothing listens on: taken, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('the blocking reader of an ioredis client', () => {
  const clients: Redis[] = []
  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect()
    vi.restoreAllMocks()
  })

  it("passes its connection errors to the client's 'error' listeners, never to ioredis' unhandled-error print", async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {})
    const client = new Redis({ port: await closedPort(), lazyConnect: true, retryStrategy: () => null })
    clients.push(client)
    const errors: Error[] = []
    client.on('error', (error) => errors.push(error))
    const reader = readConnectionOf(client as unknown as RedisStreamClient) as unknown as Redis
    clients.push(reader)
    expect(reader).not.toBe(client)
    await reader.connect().catch(() => {})
    await vi.waitFor(() => expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toContain('ECONNREFUSED'))
    expect(printed.mock.calls.filter((call) => String(call[0]).includes('Unhandled error event'))).toEqual([])
  })

  it('stays quiet when the client has no listener either (commands still reject with the error)', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {})
    const client = new Redis({ port: await closedPort(), lazyConnect: true, retryStrategy: () => null })
    clients.push(client)
    const reader = readConnectionOf(client as unknown as RedisStreamClient) as unknown as Redis
    clients.push(reader)
    await expect(reader.connect()).rejects.toThrow()
    expect(printed.mock.calls.filter((call) => String(call[0]).includes('Unhandled error event'))).toEqual([])
  })
})
