// The Express capture's two ways: methods on Express's base response (no property added to `res`),
// and own properties when a middleware before it wrapped the response's methods itself.

import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { listening, type RunningApp } from '../../../test/support/http/test-apps.test-helper.js'
import { MemoryStore } from '../../index.js'
import { expressIdempotency } from './index.js'

const running: RunningApp[] = []
afterEach(async () => {
  for (const app of running.splice(0)) await app.close()
})

async function start(app: express.Express): Promise<string> {
  const server = await listening(createServer(app))
  running.push(server)
  return `${server.url}/orders`
}

async function post(url: string, key: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({ amount: 1 }),
  })
  return { status: response.status, body: await response.text(), replayed: response.headers.get('idempotent-replayed') }
}

/** The same new key posted twice to `app`: the first response and the retry's. */
async function postTwice(app: express.Express) {
  const url = await start(app)
  const key = randomUUID()
  return [await post(url, key), await post(url, key)] as const
}

describe('Express capture', () => {
  it('adds no property to the response, and replays what the handler sent', async () => {
    const app = express()
    app.use(express.json())
    app.use(expressIdempotency({ store: new MemoryStore(), required: true }))
    const added: boolean[] = []
    let executed = 0
    app.post('/orders', (_req, res) => {
      added.push(Object.hasOwn(res, 'end') || Object.hasOwn(res, 'write') || Object.hasOwn(res, 'writeHead'))
      res.status(201).json({ n: ++executed })
    })
    const [first, retry] = await postTwice(app)
    expect(first).toEqual({ status: 201, body: '{"n":1}', replayed: null })
    expect(retry).toEqual({ status: 201, body: '{"n":1}', replayed: 'true' })
    expect(added).toEqual([false])
  })

  it('keeps capturing in an application called by hand, whose response prototype is its own', async () => {
    const inner = express()
    let executed = 0
    inner.post('/orders', (_req, res) => {
      res.status(201).type('text/plain').write('part ')
      res.end(`${++executed}`)
    })
    const app = express()
    app.use(express.json())
    app.use(expressIdempotency({ store: new MemoryStore(), required: true }))
    app.use((req, res, next) => inner(req, res, next))
    const [first, retry] = await postTwice(app)
    expect(first).toEqual({ status: 201, body: 'part 1', replayed: null })
    expect(retry).toEqual({ status: 201, body: 'part 1', replayed: 'true' })
  })

  it('stays outermost over a middleware before it that wraps res.end (the bytes stored are the handler’s)', async () => {
    const app = express()
    app.use(express.json())
    // Like compression: transforms what goes out, on the first request and on every replay alike.
    // Swapping case keeps the length (replays carry a content-length) and is not idempotent: a
    // capture inside it would store the swapped bytes, and its replay would swap them back.
    app.use((_req, res, next) => {
      const end = res.end
      res.end = function (this: express.Response, chunk?: unknown, ...rest: unknown[]) {
        const text = chunk === undefined ? '' : Buffer.from(chunk as string).toString()
        const swapped = [...text].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('')
        return (end as (...a: unknown[]) => express.Response).call(this, swapped, ...rest)
      } as express.Response['end']
      next()
    })
    app.use(expressIdempotency({ store: new MemoryStore(), required: true }))
    let executed = 0
    app.post('/orders', (_req, res) => {
      res.status(201).type('text/plain').end(`n${++executed}`)
    })
    const [first, retry] = await postTwice(app)
    expect(first).toEqual({ status: 201, body: 'N1', replayed: null })
    expect(retry).toEqual({ status: 201, body: 'N1', replayed: 'true' })
  })

  it('captures a response twice when two middlewares cover the request, each storing it', async () => {
    const app = express()
    app.use(express.json())
    app.use(expressIdempotency({ store: new MemoryStore(), required: true }))
    app.use(expressIdempotency({ store: new MemoryStore(), required: true, scope: 'inner' }))
    let executed = 0
    app.post('/orders', (_req, res) => {
      res.status(201).json({ n: ++executed })
    })
    // The outer middleware answers the retry: it replays only if its own capture was stored.
    const [first, retry] = await postTwice(app)
    expect(first).toEqual({ status: 201, body: '{"n":1}', replayed: null })
    expect(retry).toEqual({ status: 201, body: '{"n":1}', replayed: 'true' })
  })
})
