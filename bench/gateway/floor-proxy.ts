// The floor under the gateway: the same proxying done by hand with the same parts (node:http
// server, undici Pool, ioredis with auto-pipelining), no Idem code. `off`: forward and stream the
// answer back. `enforce`: claim the key with SET NX, forward with the body read whole, keep the
// answer with SET, replay a kept answer with one GET; no fingerprint, lease renewal, fencing,
// takeover, breaker or problem details. What the gateway adds costs what it costs above these.
// Prints `{"url":"http://127.0.0.1:<port>"}` once listening; SIGTERM closes it.
//
//   npx tsx bench/gateway/floor-proxy.ts <off|enforce> <upstream url> [redis prefix] [redis url]

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { Pool } from 'undici'

const [mode, upstream, prefix = 'idem-bench-floor:', redisUrl = 'redis://127.0.0.1:6379'] = process.argv.slice(2)
if ((mode !== 'off' && mode !== 'enforce') || upstream === undefined) {
  console.error('usage: floor-proxy.ts <off|enforce> <upstream url> [redis prefix] [redis url]')
  process.exit(2)
}

const pool = new Pool(new URL(upstream).origin, { connections: 128, keepAliveTimeout: 4_000 })
const redis = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 })
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'te', 'upgrade'])

function forwarded(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP.has(name)) out[name] = value
  out['x-forwarded-for'] = req.socket.remoteAddress ?? ''
  return out
}

function clean(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP.has(name)) out[name] = value
  return out
}

async function off(req: IncomingMessage, res: ServerResponse): Promise<void> {
  await pool.stream(
    { path: req.url ?? '/', method: req.method as 'POST', headers: forwarded(req), body: req },
    (data) => {
      res.writeHead(data.statusCode, clean(data.headers))
      return res
    },
  )
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function enforce(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const key = `${prefix}${req.headers['idempotency-key']}`
  const body = await readAll(req)
  const claimed = await redis.set(key, '', 'PX', 30_000, 'NX')
  if (claimed === null) {
    const kept = await redis.get(key)
    if (kept === null || kept === '') {
      res.writeHead(409).end()
      return
    }
    const { s, h, b } = JSON.parse(kept) as { s: number; h: Record<string, string>; b: string }
    res.writeHead(s, { ...h, 'idempotent-replayed': 'true' }).end(b)
    return
  }
  const answer = await pool.request({
    path: req.url ?? '/',
    method: req.method as 'POST',
    headers: forwarded(req),
    body,
  })
  const text = await answer.body.text()
  const headers = { 'content-type': String(answer.headers['content-type'] ?? '') }
  await redis.set(key, JSON.stringify({ s: answer.statusCode, h: headers, b: text }), 'PX', 86_400_000)
  res.writeHead(answer.statusCode, headers).end(text)
}

const handle = mode === 'off' ? off : enforce
const server = createServer({ keepAlive: true }, (req, res) => {
  handle(req, res).catch(() => res.destroy())
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`)
})
process.once('SIGTERM', () => {
  server.close()
  server.closeIdleConnections()
  void Promise.all([pool.close(), redis.quit()]).finally(() => process.exit(0))
})
