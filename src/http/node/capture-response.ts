// Capturing a node:http ServerResponse (Express's too): its bytes are recorded as the handler
// writes them, and its end is held until the key is stored or released, so that a client that
// has the response and retries finds the key settled, never "in progress".
//
// Every property added to an Express response costs microseconds (Express changed its prototype,
// and V8 keeps no transitions for such objects): only the three methods that must be wrapped are
// added; the state lives in their closures.

import type { ServerResponse } from 'node:http'
import type { ResponseCapture } from '../core/response-capture.js'
import { headerPairs } from '../core/stored-response.js'
import type { HttpResponse } from '../core/types.js'

type Chunk = string | Uint8Array
type Callback = (error?: Error | null) => void

export function captureResponse(res: ServerResponse, capture: ResponseCapture): void {
  const { write, end, writeHead } = res
  // Headers given to writeHead() are not visible through getHeaders(): keep them.
  let headHeaders: Array<[string, string]> | undefined

  res.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
    const headers = rest.find((arg) => typeof arg === 'object' && arg !== null)
    if (Array.isArray(headers)) {
      headHeaders ??= []
      for (let i = 0; i + 1 < headers.length; i += 2)
        headHeaders.push([String(headers[i]).toLowerCase(), String(headers[i + 1])])
    } else if (headers !== undefined) headHeaders = headerPairs(headers as Record<string, unknown>)
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, status, ...rest)
  } as typeof res.writeHead

  res.write = function (this: ServerResponse, chunk: Chunk, ...rest: unknown[]) {
    capture.write(toBytes(chunk, rest[0]))
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof res.write

  let ending = false
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    // A second end() while the first waits for the store is the handler's bug: ignore it, as Node would.
    if (ending) return this
    // After an abort (the handler threw), the error response goes out uncaptured.
    if (capture.done) return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
    ending = true
    const callback = typeof args.at(-1) === 'function' ? (args.pop() as Callback) : undefined
    const [chunk, encoding] = args as [Chunk | undefined, unknown]
    // A string is encoded once: the bytes captured are the bytes sent.
    const bytes = chunk === undefined || chunk === null ? undefined : toBytes(chunk, encoding)
    if (bytes !== undefined) capture.write(bytes)
    const headers = headerPairs(this.getHeaders())
    if (headHeaders !== undefined) for (const pair of headHeaders) headers.push(pair)
    void capture.end(this.statusCode, headers).then(() => {
      const endArgs: unknown[] = bytes === undefined ? [] : [bytes]
      if (callback !== undefined) endArgs.push(callback)
      ;(end as (...a: unknown[]) => ServerResponse).apply(this, endArgs)
    })
    return this
  } as typeof res.end

  // The connection closed before the handler ended its response: it crashed, or the client left
  // while it still works. An end() that still comes is stored; otherwise the key is released later.
  // 'close' comes once per response: on() spares once()'s wrapper and its removal.
  res.on('close', () => {
    // 'close' also follows every complete response: only then is there nothing to do.
    if (!capture.done) capture.abandon(new Error('the connection closed before the response was complete'))
  })
}

/** Send a response the core decided (a replay or a problem). */
export function sendResponse(res: ServerResponse, response: HttpResponse): void {
  res.statusCode = response.status
  const grouped = new Map<string, string[]>()
  for (const [name, value] of response.headers) grouped.set(name, [...(grouped.get(name) ?? []), value])
  for (const [name, values] of grouped) res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
  res.setHeader('content-length', response.body.byteLength)
  res.end(response.body)
}

function toBytes(chunk: Chunk, encoding: unknown): Uint8Array {
  if (typeof chunk !== 'string') return chunk
  return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
}
