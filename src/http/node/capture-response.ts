// Capturing a node:http ServerResponse (Express's too): its bytes are recorded as the handler
// writes them, and its end is held until the key is stored or released, so that a client that
// has the response and retries finds the key settled, never "in progress".
//
// Every property added to an Express response costs microseconds (Express changed its prototype,
// and V8 keeps no transitions for such objects): only the three methods that must be wrapped are
// added; the state lives in their closures.

import type { ServerResponse } from 'node:http'
import type { ResponseCapture } from '../core/response-capture.js'
import { headerPairs, setHeaderValues } from '../core/stored-response.js'
import type { HttpResponse } from '../core/types.js'

type Chunk = string | Uint8Array
type Callback = (error?: Error | null) => void

type Method = (...args: unknown[]) => unknown

/** One response being captured: what its three wrapped methods share. */
export interface Capturing {
  readonly capture: ResponseCapture
  /** Headers given to writeHead() are not visible through getHeaders(): kept here. */
  headHeaders: Array<[string, string]> | undefined
  /** True once end() was called and waits for the store. */
  ending: boolean
}

export function captureResponse(res: ServerResponse, capture: ResponseCapture): void {
  const state: Capturing = { capture, headHeaders: undefined, ending: false }
  const { write, end, writeHead } = res as unknown as Record<'write' | 'end' | 'writeHead', Method>
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    return capturedWriteHead(state, writeHead, this, args)
  } as typeof res.writeHead
  res.write = function (this: ServerResponse, ...args: unknown[]) {
    return capturedWrite(state, write, this, args)
  } as typeof res.write
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    return capturedEnd(state, end, this, args)
  } as typeof res.end
  watchClose(res, capture)
}

/** `writeHead` of a captured response: its headers are kept, then `writeHead` is called. */
export function capturedWriteHead(state: Capturing, writeHead: Method, res: ServerResponse, args: unknown[]): unknown {
  const headers = args.find((arg, i) => i > 0 && typeof arg === 'object' && arg !== null)
  if (Array.isArray(headers)) {
    state.headHeaders ??= []
    for (let i = 0; i + 1 < headers.length; i += 2)
      state.headHeaders.push([String(headers[i]).toLowerCase(), String(headers[i + 1])])
  } else if (headers !== undefined) state.headHeaders = headerPairs(headers as Record<string, unknown>)
  return writeHead.apply(res, args)
}

/** `write` of a captured response: the chunk is captured, then written. */
export function capturedWrite(state: Capturing, write: Method, res: ServerResponse, args: unknown[]): unknown {
  state.capture.write(toBytes(args[0] as Chunk, args[1]))
  return write.apply(res, args)
}

/** `end` of a captured response: the last bytes are held until the key is stored or released. */
export function capturedEnd(state: Capturing, end: Method, res: ServerResponse, args: unknown[]): unknown {
  const { capture } = state
  // A second end() while the first waits for the store is the handler's bug: ignore it, as Node would.
  if (state.ending) return res
  // After an abort (the handler threw), the error response goes out uncaptured.
  if (capture.done) return end.apply(res, args)
  state.ending = true
  const callback = typeof args.at(-1) === 'function' ? (args.pop() as Callback) : undefined
  const [chunk, encoding] = args as [Chunk | undefined, unknown]
  // A string is encoded once: the bytes captured are the bytes sent.
  const bytes = chunk === undefined || chunk === null ? undefined : toBytes(chunk, encoding)
  if (bytes !== undefined) capture.write(bytes)
  const headers = headerPairs(res.getHeaders())
  if (state.headHeaders !== undefined) {
    // When headers were set before writeHead(), Node merges writeHead's into getHeaders() too:
    // only the names getHeaders() does not have are added, or a replay would send them twice.
    const known = new Set(headers.map(([name]) => name))
    for (const pair of state.headHeaders) if (!known.has(pair[0])) headers.push(pair)
  }
  void capture.end(res.statusCode, headers).then(() => {
    const endArgs: unknown[] = bytes === undefined ? [] : [bytes]
    if (callback !== undefined) endArgs.push(callback)
    end.apply(res, endArgs)
  })
  return res
}

/**
 * The connection closed before the handler ended its response: it crashed, or the client left
 * while it still works. An end() that still comes is stored; otherwise the key is released later.
 */
export function watchClose(res: ServerResponse, capture: ResponseCapture): void {
  // 'close' comes once per response: on() spares once()'s wrapper and its removal.
  res.on('close', () => {
    // 'close' also follows every complete response: only then is there nothing to do.
    if (!capture.done) capture.abandon(new Error('the connection closed before the response was complete'))
  })
}

/** Send a response the core decided (a replay or a problem). */
export function sendResponse(res: ServerResponse, response: HttpResponse): void {
  res.statusCode = response.status
  setHeaderValues(response.headers, (name, value) => res.setHeader(name, value))
  res.setHeader('content-length', response.body.byteLength)
  res.end(response.body)
}

function toBytes(chunk: Chunk, encoding: unknown): Uint8Array {
  if (typeof chunk !== 'string') return chunk
  return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
}
