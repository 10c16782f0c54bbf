import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { reachable } from './services.js'

describe('reachable', () => {
  it('tells a listening port from a closed one', async () => {
    const server = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const { port } = server.address() as { port: number }
    expect(await reachable(port)).toBe(true)
    await new Promise((resolve) => server.close(resolve))
    expect(await reachable(port)).toBe(false)
  })
})
