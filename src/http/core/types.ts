// The shapes the HTTP core speaks: a request normalised by an adapter, a response to send, and
// the decision an adapter carries out.

import type { ResponseCapture } from './response-capture.js'

/** Header values as node:http, Fastify and Hono expose them: lower-case names. */
export type HeaderRecord = Readonly<Record<string, string | readonly string[] | number | undefined>>

/** A request as every adapter describes it to the core. */
export interface HttpRequest {
  /** Upper-case method. */
  method: string
  /** The request target as received: path and query. Part of the fingerprint. */
  url: string
  /** The route the request matched (a template such as `/orders/:id` when the framework knows it, else the path). Part of the scope. */
  route: string
  /** Request headers, lower-case names. */
  headers: HeaderRecord
  /**
   * The body as the framework has it: bytes, a string, or an already-parsed value (a body
   * parser's JSON). Raw JSON and parsed JSON fingerprint alike, so a parser's place does not matter.
   */
  body?: unknown
  /** Read the body when `body` is undefined and the framework has not read it; called only when needed. */
  readBody?: () => Promise<Uint8Array | undefined>
}

/** A complete response the adapter sends in place of the handler: a replay or a problem. */
export interface HttpResponse {
  status: number
  /** Lower-case names; a name may repeat (Set-Cookie). */
  headers: Array<[string, string]>
  body: Uint8Array
}

/** What the adapter does with a request. */
export type Decision =
  /** Not subject to idempotency (another method, no key where optional, or fail-open): run the handler untouched. */
  | { action: 'pass' }
  /** Answer with `response` and do not run the handler. */
  | { action: 'respond'; response: HttpResponse; replayed: boolean /** For a problem: its code. */; code?: string }
  /** Run the handler and feed its response to `capture`. */
  | { action: 'proceed'; capture: ResponseCapture }
