// The reverse proxy: one undici Pool of keep-alive connections to the upstream, request bodies
// streamed unless the gateway had to read them, responses streamed back (and, for a request
// that claimed a key, captured on the way so that its retries are replayed).
//
// Why undici: it is Node's own HTTP client (fetch is built on it), its Pool keeps connections
// alive and pipelines nothing by default, and its `request` gives the body as a stream with
// backpressure and distinct errors for connect, header and body timeouts, which is what a proxy
// needs to answer 502 and 504 precisely. Fastify + @fastify/reply-from sits on the same undici,
// with a framework in between that the gateway does not need.

import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Pool } from 'undici'
import type { ResponseCapture } from '../http/core/response-capture.js'
import { headerPairs } from '../http/core/stored-response.js'
import type { HttpResponse } from '../http/core/types.js'
import { sendResponse } from '../http/node/capture-response.js'
import type { GatewayConfig } from './config/schema.js'
import { GatewayProblem, gatewayProblem } from './problems.js'

/** Headers of one connection, never forwarded (RFC 9110 §7.6.1), plus those the proxy sets itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

export type UpstreamFailure = 'timeout' | 'unavailable' | 'broken'

/** How one forwarded request ended, for the gateway's counters. */
export interface ForwardOutcome {
  /** The upstream's status, or the gateway's 502/504 when the upstream failed before its headers. */
  status: number
  /** Set when the upstream failed: before its headers (`timeout`, `unavailable`) or in its body (`broken`). */
  failure?: UpstreamFailure
}

export class UpstreamProxy {
  readonly #pool: Pool
  readonly #prefix: string
  readonly #origin: string

  constructor(config: GatewayConfig['upstream']) {
    const url = new URL(config.url)
    this.#origin = url.origin
    this.#prefix = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
    this.#pool = new Pool(url.origin, {
      connections: config.connections,
      headersTimeout: config.timeout,
      // Between two chunks of a body: a stalled upstream is cut rather than held forever.
      bodyTimeout: config.timeout,
      connect: { timeout: config.connectTimeout },
      keepAliveTimeout: 4_000,
    })
  }

  get origin(): string {
    return this.#origin
  }

  /**
   * Forward `req` and stream the answer to `res`. `body` is the request body when the gateway read
   * it (undefined: stream `req` itself). With `capture`, the response is captured as it goes and
   * its end is held until the key is stored or released; the upstream is read to the end even if
   * the client left, so that the outcome is kept for its retry.
   */
  async forward(
    req: IncomingMessage,
    res: ServerResponse,
    body: Uint8Array | undefined,
    capture?: ResponseCapture,
  ): Promise<ForwardOutcome> {
    const options = {
      path: this.#prefix + (req.url ?? '/'),
      method: req.method as 'POST',
      headers: forwardedHeaders(req, body),
      body: body ?? (hasBody(req) ? req : undefined),
    }
    if (capture === undefined) return this.#pipe(options, res)
    let upstream: Awaited<ReturnType<Pool['request']>>
    try {
      upstream = await this.#pool.request(options)
    } catch (error) {
      const problem = upstreamProblem(error)
      // A 5xx releases the key: the retry may run the upstream again, which is right when it never answered.
      await capture.end(problem.response.status, problem.response.headers)
      sendProblem(res, problem.response)
      return { status: problem.response.status, failure: problem.failure }
    }

    const headers = responseHeaders(upstream.headers)
    if (!res.destroyed) res.writeHead(upstream.statusCode, headers)
    // The last chunk is held back until the key is stored or released: with Content-Length
    // framing the client sees the response complete with its last byte, not with res.end(), and
    // must not before the outcome is stored (its next retry would find the key in progress, and a
    // crash in between would lose the completion of a response the client already holds). Node
    // sends the headers with the first write, so an empty body is held back whole.
    let held: Buffer | undefined
    try {
      for await (const chunk of upstream.body) {
        capture.write(chunk as Buffer)
        const previous = held
        held = chunk as Buffer
        if (previous !== undefined && !res.destroyed && !res.write(previous)) await drained(res)
      }
    } catch (error) {
      // The upstream broke off mid-body: the client gets a cut response, the key is released.
      await capture.abort(error)
      res.destroy()
      return { status: upstream.statusCode, failure: 'broken' }
    }
    await capture.end(upstream.statusCode, headerPairs(headers))
    if (held !== undefined && !res.destroyed) res.end(held)
    else res.end()
    return { status: upstream.statusCode }
  }

  /**
   * Without a capture, undici writes the upstream's body straight into `res` (its `stream` API,
   * with backpressure, and no async iteration per chunk); a client that leaves aborts the upstream call.
   */
  async #pipe(options: Parameters<Pool['stream']>[0], res: ServerResponse): Promise<ForwardOutcome> {
    let status = 0
    try {
      await this.#pool.stream(options, ({ statusCode, headers }) => {
        status = statusCode
        res.writeHead(statusCode, responseHeaders(headers))
        return res
      })
      return { status }
    } catch (error) {
      if (status !== 0) {
        res.destroy()
        return { status, failure: 'broken' }
      }
      const problem = upstreamProblem(error)
      sendProblem(res, problem.response)
      return { status: problem.response.status, failure: problem.failure }
    }
  }

  close(): Promise<void> {
    return this.#pool.close()
  }
}

/** The problem for an upstream that failed before its headers: 504 for a timeout, 502 otherwise. */
function upstreamProblem(error: unknown): { response: HttpResponse; failure: UpstreamFailure } {
  if (TIMEOUT_CODES.has((error as { code?: string }).code ?? '')) {
    const response = gatewayProblem(
      GatewayProblem.UPSTREAM_TIMEOUT,
      'The upstream did not answer within the configured time.',
    )
    return { response, failure: 'timeout' }
  }
  const detail = `The upstream could not be reached: ${describe(error)}.`
  return { response: gatewayProblem(GatewayProblem.UPSTREAM_UNAVAILABLE, detail), failure: 'unavailable' }
}

/** Send a complete response the gateway decided (a replay or a problem). */
export function sendProblem(res: ServerResponse, response: HttpResponse): void {
  // Too late for a status once the upstream's headers went out: cut the response instead.
  if (res.headersSent || res.destroyed) res.destroy()
  else sendResponse(res, response)
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined
    ? req.headers['content-length'] !== '0'
    : req.headers['transfer-encoding'] !== undefined
}

/** The client's headers minus hop-by-hop ones, plus X-Forwarded-For/-Host/-Proto and Forwarded. */
export function forwardedHeaders(
  req: IncomingMessage,
  body: Uint8Array | undefined,
): Record<string, string | string[]> {
  const connectionTokens = listTokens(req.headers.connection)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue
    out[name] = value
  }
  const client = req.socket.remoteAddress ?? 'unknown'
  const host = req.headers.host
  const proto = 'encrypted' in req.socket && req.socket.encrypted === true ? 'https' : 'http'
  const priorFor = req.headers['x-forwarded-for']
  out['x-forwarded-for'] = priorFor === undefined ? client : `${priorFor}, ${client}`
  if (host !== undefined) out['x-forwarded-host'] = req.headers['x-forwarded-host'] ?? host
  out['x-forwarded-proto'] = (req.headers['x-forwarded-proto'] as string | undefined) ?? proto
  const element = `for=${forwardedNode(client)}${host === undefined ? '' : `;host="${host}"`};proto=${proto}`
  const priorForwarded = req.headers.forwarded
  out.forwarded = priorForwarded === undefined ? element : `${priorForwarded}, ${element}`
  if (body !== undefined) {
    // The body was read whole: send it with its length (a chunked request is re-framed).
    out['content-length'] = String(body.byteLength)
  }
  return out
}

/** RFC 7239: an IPv6 address is quoted and bracketed. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address
}

function listTokens(value: string | undefined): Set<string> {
  if (value === undefined) return new Set()
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()))
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connectionTokens = listTokens(typeof headers.connection === 'string' ? headers.connection : undefined)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue
    out[name] = value
  }
  return out
}

async function drained(res: ServerResponse): Promise<void> {
  const ac = new AbortController()
  await Promise.race([once(res, 'drain', { signal: ac.signal }), once(res, 'close', { signal: ac.signal })]).catch(
    () => undefined,
  )
  ac.abort()
}

function describe(error: unknown): string {
  const code = (error as { code?: string })?.code
  const message = (error as Error)?.message ?? String(error)
  return code === undefined ? message : `${message} (${code})`
}
