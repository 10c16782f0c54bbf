import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../index.js'
import { withIdempotency } from './node-handler.js'

let server: Server | undefined
afterEach(() => new Promise<void>((done) => (server === undefined ? done() : server.close(() => done()))))

async function serve(handler: Parameters<typeof withIdempotency>[1]): Promise<string> {
  const handle = withIdempotency(
    {
      store: new MemoryStore(),
      required: true,
      replayHeaders: ['content-type', 'x-set-before', 'x-in-write-head', 'x-raw', 'x-raw-2'],
    },
    handler,
  )
  server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((ready) => server?.listen(0, '127.0.0.1', ready))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

async function twice(url: string): Promise<[Response, Response]> {
  const send = () => fetch(url, { method: 'POST', headers: { 'idempotency-key': 'k-1' }, body: '{}' })
  const first = await send()
  await first.arrayBuffer()
  return [first, await send()]
}

describe('a node:http response captured for replay', () => {
  it('replays headers given to writeHead() after setHeader() once, as they were sent', async () => {
    const url = await serve((_req, res) => {
      res.setHeader('x-set-before', 'a')
      res.writeHead(201, { 'x-in-write-head': 'b', 'content-type': 'text/plain' }).end('made')
    })
    const [first, again] = await twice(url)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    for (const response of [first, again]) {
      expect(response.status).toBe(201)
      expect(response.headers.get('x-set-before')).toBe('a')
      expect(response.headers.get('x-in-write-head')).toBe('b')
      expect(response.headers.get('content-type')).toBe('text/plain')
    }
    expect(await again.text()).toBe('made')
  })

  it('replays headers given only to writeHead() (not visible through getHeaders())', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, ['x-raw', '1', 'x-raw-2', '2']).end('raw')
    })
    const [, again] = await twice(url)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.headers.get('x-raw')).toBe('1')
    expect(again.headers.get('x-raw-2')).toBe('2')
  })
})
