// One test application written for each framework: the same endpoints, each in that framework's
// idiom, over a real socket on 127.0.0.1, so that the behavioural suite runs unchanged on all four.

import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { expressIdempotency } from '../../../src/http/express/index.js'
import { fastifyIdempotency } from '../../../src/http/fastify/index.js'
import { honoIdempotency } from '../../../src/http/hono/index.js'
import { type HttpIdempotency, withIdempotency } from '../../../src/http/index.js'

/** What the endpoints share with the test: executions per endpoint and switches for failures. */
export class AppState {
  readonly executions = new Map<string, number>()
  /** /slow waits for this before it answers. */
  gate: Promise<void> = Promise.resolve()
  /** /flaky answers 500 this many times. */
  failNext = 0
  /** /crash breaks its response off this many times. */
  crashNext = 0
  /** /throw throws before answering this many times. */
  throwNext = 0

  count(endpoint: string): number {
    return this.executions.get(endpoint) ?? 0
  }
}

type Reply =
  | { status: number; headers: Record<string, string>; body: Uint8Array | string }
  | { crash: string }
  | { throw: Error }

/** 256 bytes 0..255: every byte value, none of it valid UTF-8 as a whole. */
export const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

/** The endpoints, framework-free: each framework below only translates requests and replies. */
export async function handle(state: AppState, path: string, query: URLSearchParams, body: unknown): Promise<Reply> {
  const endpoint = path.slice(1)
  const n = state.count(endpoint) + 1
  state.executions.set(endpoint, n)
  const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(value),
  })
  switch (endpoint) {
    case 'orders':
      return json(201, { n, received: body }, { location: `/orders/${n}`, 'set-cookie': `session=s${n}; HttpOnly` })
    case 'files':
      return {
        status: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.concat([ALL_BYTES, Buffer.from([n])]),
      }
    case 'text':
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: `héllo ✓ ${n}` }
    case 'slow':
      await state.gate
      return json(201, { n })
    case 'flaky':
      if (state.failNext > 0) {
        state.failNext--
        return json(500, { error: 'flaky', n })
      }
      return json(200, { n })
    case 'missing':
      return json(404, { error: 'no such thing', n })
    case 'crash':
      if (state.crashNext > 0) {
        state.crashNext--
        return { crash: `partial ${n}` }
      }
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: `whole ${n}` }
    case 'throw':
      if (state.throwNext > 0) {
        state.throwNext--
        return { throw: new Error('the handler failed') }
      }
      return json(200, { n })
    case 'big':
      return {
        status: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(Number(query.get('bytes')), n),
      }
    case 'large':
      // Printable text: stored as it is, so its stored form is about as large as the body.
      return {
        status: 200,
        headers: { 'content-type': 'text/plain' },
        body: Buffer.alloc(Number(query.get('bytes')), 0x61 + (n % 26)),
      }
    default:
      return json(404, { error: `no endpoint ${endpoint}` })
  }
}

export interface RunningApp {
  url: string
  close(): Promise<void>
}

export interface FrameworkRig {
  name: string
  /** True when this framework's own body limit answers an oversized body, not Idem's 413 problem. */
  frameworkBodyLimit: boolean
  start(core: HttpIdempotency, state: AppState, bodyLimit: number): Promise<RunningApp>
}

export const decode = (bytes: Buffer, contentType: string | undefined): unknown =>
  contentType?.startsWith('application/json') && bytes.length > 0 ? JSON.parse(bytes.toString()) : bytes.length

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export function listening(server: Server): Promise<RunningApp> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          }),
      })
    })
  })
}

export const nodeRig: FrameworkRig = {
  name: 'node:http',
  frameworkBodyLimit: false,
  start: (core, state) => {
    const handler = withIdempotency(core, async (req, res, body) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const data = decode(body ?? (await readAll(req)), req.headers['content-type'])
      const reply = await handle(state, url.pathname, url.searchParams, data)
      if ('throw' in reply) throw reply.throw
      if ('crash' in reply) {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write(reply.crash)
        throw new Error('crashed mid-response')
      }
      res.writeHead(reply.status, reply.headers)
      res.end(reply.body)
    })
    return listening(createServer((req, res) => void handler(req, res)))
  },
}

export const expressRig: FrameworkRig = {
  name: 'Express',
  frameworkBodyLimit: false,
  start: (core, state) => {
    const app = express()
    app.use(express.json())
    app.use(expressIdempotency(core))
    app.use(async (req, res) => {
      const body = Buffer.isBuffer(req.body) ? decode(req.body, req.headers['content-type']) : req.body
      const reply = await handle(state, req.path, new URLSearchParams(req.originalUrl.split('?')[1]), body)
      if ('throw' in reply) throw reply.throw
      if ('crash' in reply) {
        res.status(200).type('text/plain').write(reply.crash)
        throw new Error('crashed mid-response')
      }
      res
        .status(reply.status)
        .set(reply.headers)
        .send(typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body))
    })
    app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      // Express's own handler, minus its stderr log: a 500 before the headers, a cut connection after.
      if (res.headersSent) res.socket?.destroy()
      else res.status(500).send('Internal Server Error')
    })
    return listening(createServer(app))
  },
}

export const fastifyRig: FrameworkRig = {
  name: 'Fastify',
  frameworkBodyLimit: true,
  start: async (core, state, bodyLimit) => {
    const app = Fastify({ bodyLimit })
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    await app.register(fastifyIdempotency, core)
    app.all('/*', async (request, reply) => {
      const url = new URL(request.url, 'http://localhost')
      const body = Buffer.isBuffer(request.body) ? request.body.length : request.body
      const result = await handle(state, url.pathname, url.searchParams, body)
      if ('throw' in result) throw result.throw
      if ('crash' in result) {
        const stream = new Readable({ read() {} })
        stream.push(result.crash)
        setTimeout(() => stream.destroy(new Error('crashed mid-response')), 20)
        return reply.code(200).type('text/plain').send(stream)
      }
      return reply
        .code(result.status)
        .headers(result.headers)
        .send(typeof result.body === 'string' ? result.body : Buffer.from(result.body))
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
  },
}

export const honoRig: FrameworkRig = {
  name: 'Hono',
  frameworkBodyLimit: false,
  start: (core, state) => {
    const app = new Hono()
    app.use(honoIdempotency(core))
    app.all('*', async (c) => {
      const url = new URL(c.req.url)
      const isJson = c.req.header('content-type')?.startsWith('application/json') === true
      const body = isJson ? await c.req.json() : (await c.req.arrayBuffer()).byteLength
      const reply = await handle(state, url.pathname, url.searchParams, body)
      if ('throw' in reply) throw reply.throw
      if ('crash' in reply) {
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(Buffer.from(reply.crash))
            setTimeout(() => controller.error(new Error('crashed mid-response')), 20)
          },
        })
        return new Response(stream, { status: 200, headers: { 'content-type': 'text/plain' } })
      }
      return new Response(reply.body, { status: reply.status, headers: reply.headers })
    })
    app.onError((_error, c) => c.text('Internal Server Error', 500))
    return new Promise((resolve) => {
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              ;(server as Server).closeAllConnections()
              server.close(() => done())
            }),
        })
      })
    })
  },
}

export const FRAMEWORKS: readonly FrameworkRig[] = [nodeRig, expressRig, fastifyRig, honoRig]
