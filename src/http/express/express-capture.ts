// Capturing an Express response without adding properties to it.
//
// Express re-prototypes every `res` (Object.setPrototypeOf to the application's response), and V8
// keeps no map transitions for objects whose prototype was changed: every property then added to
// `res` copies its map, a few microseconds each, and capturing by own properties adds three
// (write, end, writeHead) per request. Instead, the three methods are defined once on Express's
// base response (the object every application's response inherits from, the one just above
// node's ServerResponse.prototype) and look up the response being captured in a WeakMap; any
// other response goes straight to the original method. Applications, mounted sub-applications and
// applications called by hand all inherit from that base, so re-prototyping keeps the capture.
//
// Where the lookup of `res.end` (or write, writeHead) does not reach those methods, because a
// middleware before this one wrapped them on `res` or something overrides them in between, or
// where the response is captured already, it is captured with own properties as before, so that
// the capture stays the outermost wrapper.

import { ServerResponse } from 'node:http'
import type { ResponseCapture } from '../core/response-capture.js'
import {
  type Capturing,
  capturedEnd,
  capturedWrite,
  capturedWriteHead,
  captureResponse,
  watchClose,
} from '../node/capture-response.js'

type Method = (...args: unknown[]) => unknown
type Methods = Record<'write' | 'end' | 'writeHead', Method>

const capturing = new WeakMap<ServerResponse, Capturing>()
/** The methods defined on each base, to recognise them from a response. */
const defined = new WeakMap<object, Methods>()

export function captureExpressResponse(res: ServerResponse, capture: ResponseCapture): void {
  const base = expressBase(res)
  const methods = base === undefined ? undefined : (defined.get(base) ?? define(base))
  const r = res as unknown as Methods
  if (
    methods === undefined ||
    // Captured already (a second middleware on the same request): this one wraps that one.
    capturing.has(res) ||
    r.end !== methods.end ||
    r.write !== methods.write ||
    r.writeHead !== methods.writeHead
  ) {
    captureResponse(res, capture)
    return
  }
  capturing.set(res, { capture, headHeaders: undefined, ending: false })
  watchClose(res, capture)
}

/** The prototype just above ServerResponse.prototype in `res`'s chain; none for a plain ServerResponse (own properties cost little there). */
function expressBase(res: ServerResponse): object | undefined {
  let proto = Object.getPrototypeOf(res) as object | null
  if (proto === ServerResponse.prototype) return undefined
  while (proto !== null) {
    const above = Object.getPrototypeOf(proto) as object | null
    if (above === ServerResponse.prototype) return proto
    proto = above
  }
  return undefined
}

function define(base: object): Methods {
  const { write, end, writeHead } = base as Methods
  const methods: Methods = {
    writeHead(this: ServerResponse, ...args: unknown[]) {
      const state = capturing.get(this)
      return state === undefined ? writeHead.apply(this, args) : capturedWriteHead(state, writeHead, this, args)
    },
    write(this: ServerResponse, ...args: unknown[]) {
      const state = capturing.get(this)
      return state === undefined ? write.apply(this, args) : capturedWrite(state, write, this, args)
    },
    end(this: ServerResponse, ...args: unknown[]) {
      const state = capturing.get(this)
      return state === undefined ? end.apply(this, args) : capturedEnd(state, end, this, args)
    },
  }
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(base, name, { value, writable: true, configurable: true, enumerable: false })
  }
  defined.set(base, methods)
  return methods
}
