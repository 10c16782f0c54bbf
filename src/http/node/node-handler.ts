// idem/http's adapter: wrap a node:http request handler so that it runs once per Idempotency-Key.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { type HttpAdapterOptions, HttpIdempotency } from '../core/http-idempotency.js'
import { captureResponse, sendResponse } from './capture-response.js'
import { readBody } from './read-body.js'

/**
 * A node:http handler. When the request carries a key, the wrapper has read the body to
 * fingerprint it: it comes as `body` and `req` is drained. Otherwise (another method, no key)
 * `body` is undefined and `req` is untouched: `const data = body ?? (await readAll(req))`.
 */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined) => unknown

/**
 * Wrap a node:http handler so that it runs once per Idempotency-Key. `options` are the HTTP
 * options (`{ store }` or `{ idem }`, and the rest), or an `HttpIdempotency` shared between adapters.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { MemoryStore } from 'idem'
 * import { withIdempotency } from 'idem/http'
 *
 * const handler = withIdempotency({ store: new MemoryStore(), required: true }, async (req, res, body) => {
 *   res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(await charge(body)))
 * })
 * createServer((req, res) => void handler(req, res)).listen(3000)
 * ```
 */
export function withIdempotency(
  options: HttpAdapterOptions,
  handler: NodeHandler,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const core = HttpIdempotency.from(options)
  return async (req, res) => {
    const method = req.method ?? 'GET'
    if (!core.covers(method)) {
      await handler(req, res, undefined)
      return
    }
    let body: Buffer | undefined
    const url = req.url ?? '/'
    const decision = await core
      .decide({
        method,
        url,
        route: url.split('?', 1)[0] as string,
        headers: req.headers,
        readBody: async () => {
          body = ((await readBody(req, core.maxRequestBytes)) as Buffer | undefined) ?? Buffer.alloc(0)
          return body
        },
      })
      .catch((error: unknown) => {
        // The body could not be read (the client went away): there is nobody to answer.
        res.destroy(error as Error)
        return undefined
      })
    if (decision === undefined) return
    if (decision.action === 'respond') return sendResponse(res, decision.response)
    if (decision.action === 'proceed') captureResponse(res, decision.capture)
    try {
      await handler(req, res, body)
    } catch (error) {
      if (decision.action === 'proceed') await decision.capture.abort(error)
      if (!res.headersSent) {
        res.statusCode = 500
        res.end()
      } else res.destroy()
    }
  }
}
