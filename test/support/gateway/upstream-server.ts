// A real upstream for the gateway's tests and benchmark: a plain node:http server, run in its own
// process (`npx tsx test/support/gateway/upstream-server.ts`, or startUpstream() in
// upstream.test-helper.ts), that COUNTS how often it executes each request. It prints
// `{"url":"http://127.0.0.1:<port>"}` as one JSON line on stdout once it listens (127.0.0.1, port 0,
// or the port given as the first argument).
//
// Every POST and PATCH counts one execution: in `total`, and under its key in `byKey` when it has
// one (the `x-test-key` header, else the `id` field of a JSON body). Other methods never count.
//
//   GET  /__executions   {"total": n, "byKey": {"<key>": n}} (not counted)
//   POST /__reset        clears the counts, answers 204 (not counted)
//   /slow?ms=N           counts when it starts, then waits N ms before answering as /orders does
//   /fail                503 {"error": "upstream failure", "execution": n} (counted)
//   /die                 writes the headers (with the full content-length) and half of the body,
//                        then destroys the socket (counted)
//   /stream?chunks=N     N chunks of `chunk <i> <ms since start>\n`, 10 ms apart, chunked encoding
//   /big?bytes=N         N bytes of `x`, application/octet-stream
//   /orders, any other   201 (200 for GET and HEAD) application/json:
//                        {"id": "ord_<total>", "execution": n, "echo": <body>, "headers": {...}}
//
// `execution` is the number of times this key has executed, counting this one (the running total
// when the request has no key); `id` is new for every execution, so a replay is recognisable by
// its body. `echo` is the body parsed as JSON (its text when it is not JSON, null when empty);
// `headers` are the request headers as this server received them (lower-cased), so tests can check
// what a proxy added (X-Forwarded-For, Forwarded) and removed (hop-by-hop headers).
// Keep-alive stays on, with a keep-alive timeout longer than any proxy's idle timeout (so that a
// pooled connection is never closed under a request in flight).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const counts = { total: 0, byKey: new Map<string, number>() }

function count(key: string | undefined): number {
  counts.total++
  if (key === undefined) return counts.total
  const n = (counts.byKey.get(key) ?? 0) + 1
  counts.byKey.set(key, n)
  return n
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

function parse(body: Buffer): unknown {
  if (body.length === 0) return null
  const text = body.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function keyOf(req: IncomingMessage, echo: unknown): string | undefined {
  const header = req.headers['x-test-key']
  if (typeof header === 'string' && header !== '') return header
  if (echo !== null && typeof echo === 'object' && !Array.isArray(echo)) {
    const id = (echo as Record<string, unknown>).id
    if (typeof id === 'string' || typeof id === 'number') return String(id)
  }
  return undefined
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const positive = (value: string | null, fallback: number) => {
  const n = Number(value ?? fallback)
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : fallback
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://upstream')
  const method = req.method ?? 'GET'
  const body = await readBody(req)

  if (url.pathname === '/__executions' && method === 'GET') {
    json(res, 200, { total: counts.total, byKey: Object.fromEntries(counts.byKey) })
    return
  }
  if (url.pathname === '/__reset' && method === 'POST') {
    counts.total = 0
    counts.byKey.clear()
    res.writeHead(204).end()
    return
  }

  const echo = parse(body)
  const counted = method === 'POST' || method === 'PATCH'
  const execution = counted ? count(keyOf(req, echo)) : 0
  const status = method === 'GET' || method === 'HEAD' ? 200 : 201
  const answer = () => ({ id: `ord_${counts.total}`, execution, echo, headers: req.headers })

  switch (url.pathname) {
    case '/slow': {
      const ms = positive(url.searchParams.get('ms'), 1000)
      await new Promise((resolve) => setTimeout(resolve, ms))
      json(res, status, answer())
      return
    }
    case '/fail':
      json(res, 503, { error: 'upstream failure', execution })
      return
    case '/die': {
      const full = Buffer.from(JSON.stringify(answer()))
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': full.length })
      res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroy())
      return
    }
    case '/stream': {
      const chunks = positive(url.searchParams.get('chunks'), 5)
      const startedAt = Date.now()
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-execution': String(execution) })
      for (let i = 0; i < chunks; i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 10))
        if (res.destroyed) return
        res.write(`chunk ${i} ${Date.now() - startedAt}\n`)
      }
      res.end()
      return
    }
    case '/big': {
      const bytes = positive(url.searchParams.get('bytes'), 1 << 20)
      res.writeHead(status, {
        'content-type': 'application/octet-stream',
        'content-length': bytes,
        'x-execution': String(execution),
      })
      res.end(Buffer.alloc(bytes, 'x'))
      return
    }
    default:
      json(res, status, answer())
  }
}

const server = createServer({ keepAlive: true }, (req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) json(res, 500, { error: String(error) })
    else res.destroy()
  })
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000
server.requestTimeout = 0

const port = Number(process.argv[2] ?? 0)
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address() as AddressInfo
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${actual}` })}\n`)
})

const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
