// `idempotencyInterceptor()`: the same policy as `idempotentFetch`, as an undici interceptor, for
// Node code that talks through a Dispatcher (`new Agent().compose(idempotencyInterceptor())`,
// undici's request() and fetch() with that dispatcher). Only types come from undici, so this file
// loads nothing at run time and the browser bundle of `idem/client` stays free of it.
//
// One operation is several dispatches below this one. The caller's handler sees a single request:
// it gets one controller (ours, forwarding to the current attempt), and only the attempt that is
// kept reaches it; a retried answer is read to its end and dropped, a failed attempt is retried.

import type { Dispatcher } from 'undici'
import { isKeyReusedProblem, keyReusedByServer } from './errors.js'
import { fingerprint, KeyMemory } from './keys.js'
import { type Operation, RetryPolicy, type RetryPolicyOptions } from './policy.js'

export type IdempotencyInterceptorOptions = RetryPolicyOptions

type Headers = Record<string, string | string[] | undefined>
type Handler = Dispatcher.DispatchHandler
type Controller = Dispatcher.DispatchController

/**
 * An interceptor that gives covered requests (POST and PATCH by default) an Idempotency-Key and
 * retries them with that key. Request bodies are buffered once (streams included) so that each
 * attempt sends the same bytes; a FormData body is refused, serialize it first.
 */
export function idempotencyInterceptor(options: IdempotencyInterceptorOptions = {}): Dispatcher.DispatchInterceptor {
  const policy = new RetryPolicy(options)
  const memory = new KeyMemory(policy.rememberKeys)
  return (dispatch) => (opts, handler) => {
    if (!policy.covers(opts.method)) return dispatch(opts, handler)
    new IdempotentOperation(dispatch, opts, handler, policy, memory).start()
    return true
  }
}

/** The controller the caller's handler holds for the whole operation; it steers the current attempt. */
class OperationController implements Controller {
  current: Controller | undefined
  #aborted = false
  #paused = false
  #reason: Error | null = null
  onAbort: ((reason: Error) => void) | undefined

  get aborted(): boolean {
    return this.#aborted
  }
  get paused(): boolean {
    return this.#paused
  }
  get reason(): Error | null {
    return this.#reason
  }
  abort(reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.current?.abort(reason)
    this.onAbort?.(reason)
  }
  pause(): void {
    this.#paused = true
    this.current?.pause()
  }
  resume(): void {
    this.#paused = false
    this.current?.resume()
  }
}

class IdempotentOperation {
  readonly #controller = new OperationController()
  #op: Operation | undefined
  #init: Dispatcher.DispatchOptions | undefined
  #finished = false
  #sleeping: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly dispatch: Dispatcher.Dispatch,
    readonly opts: Dispatcher.DispatchOptions,
    readonly handler: Handler,
    readonly policy: RetryPolicy,
    readonly memory: KeyMemory,
  ) {}

  start(): void {
    // The caller's handler gets its controller before anything is sent: undici's request() wires
    // the caller's AbortSignal to it here, and must reach us even while we wait between attempts.
    this.#controller.onAbort = (reason) => {
      clearTimeout(this.#sleeping)
      if (this.#sleeping !== undefined) this.#fail(reason)
    }
    this.handler.onRequestStart?.(this.#controller, {})
    this.#prepare().then(
      () => this.#attempt(),
      (error: unknown) => this.#fail(error),
    )
  }

  async #prepare(): Promise<void> {
    const body = await bufferBody(this.opts.body)
    const headers = normalizeHeaders(this.opts.headers)
    const url = `${String(this.opts.origin ?? '').replace(/\/$/, '')}${this.opts.path}`
    const given = headers['idempotency-key']
    if (Array.isArray(given)) throw new TypeError('The Idempotency-Key header was given more than once')
    const key = given ?? this.policy.newKey({ method: this.opts.method, url })
    headers['idempotency-key'] = key
    this.memory.claim(key, await fingerprint(this.opts.method, url, body))
    this.#op = this.policy.begin(key)
    this.#init = { ...this.opts, headers, body }
  }

  #attempt(): void {
    const op = this.#op as Operation
    if (this.#controller.aborted) {
      this.#fail(this.#controller.reason)
      return
    }
    op.attempts++
    const budget = this.policy.attemptBudget(op)
    let inner: Controller | undefined
    let timedOut: Error | undefined
    const timer =
      budget === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = new DOMException(`attempt ${op.attempts} took over ${budget} ms`, 'TimeoutError')
            inner?.abort(timedOut)
          }, budget)
    let mode: 'pending' | 'pass' | 'discard' | 'problem' = 'pending'
    let delay: number | undefined
    let held: { status: number; headers: Headers; message: string | undefined; chunks: Buffer[] } | undefined
    const outer = this.handler
    const controller = this.#controller

    const attemptHandler: Handler = {
      onRequestStart: (ctrl) => {
        inner = ctrl
        controller.current = ctrl
        if (controller.aborted) ctrl.abort(controller.reason as Error)
        else if (timedOut) ctrl.abort(timedOut)
        else if (controller.paused) ctrl.pause()
      },
      onResponseStart: (_ctrl, status, headers, message) => {
        clearTimeout(timer)
        if (status === 422 && String(headers['content-type'] ?? '').includes('problem+json')) {
          mode = 'problem'
          held = { status, headers, message, chunks: [] }
          return
        }
        delay = this.policy.afterStatus(op, status, single(headers['retry-after']))
        if (delay !== undefined) {
          mode = 'discard'
          return
        }
        mode = 'pass'
        outer.onResponseStart?.(controller, status, headers, message)
      },
      onResponseData: (_ctrl, chunk) => {
        if (mode === 'pass') outer.onResponseData?.(controller, chunk)
        else if (mode === 'problem') held?.chunks.push(chunk)
      },
      onResponseEnd: (_ctrl, trailers) => {
        if (mode === 'pass') {
          this.#finished = true
          outer.onResponseEnd?.(controller, trailers)
        } else if (mode === 'discard') {
          this.#wait(delay as number)
        } else if (mode === 'problem' && held) {
          this.#problem(op.key, held, trailers)
        }
      },
      onResponseError: (_ctrl, error) => {
        clearTimeout(timer)
        if (mode === 'pass') {
          // The caller has the headers already: what broke off now is theirs to handle.
          this.#finished = true
          outer.onResponseError?.(controller, error)
          return
        }
        if (controller.aborted) return this.#fail(controller.reason ?? error)
        // An answer being dropped for a retry that broke off: the retry goes ahead as planned.
        const next = mode === 'discard' ? delay : this.policy.afterError(op, error)
        if (next === undefined) return this.#fail(this.policy.giveUp(op, error))
        this.#wait(next)
      },
    }
    try {
      this.dispatch(this.#init as Dispatcher.DispatchOptions, attemptHandler)
    } catch (error) {
      clearTimeout(timer)
      this.#fail(error)
    }
  }

  #wait(ms: number): void {
    this.#sleeping = setTimeout(() => {
      this.#sleeping = undefined
      this.#attempt()
    }, ms)
  }

  /** A 422 problem: thrown when it is `key-reused`, else handed on as the answer it is. */
  #problem(
    key: string,
    held: { status: number; headers: Headers; message: string | undefined; chunks: Buffer[] },
    trailers: Headers,
  ): void {
    let problem: unknown
    try {
      problem = JSON.parse(new TextDecoder().decode(concat(held.chunks)))
    } catch {
      problem = undefined
    }
    if (isKeyReusedProblem(problem)) {
      this.#fail(keyReusedByServer(key, problem))
      return
    }
    this.#finished = true
    this.handler.onResponseStart?.(this.#controller, held.status, held.headers, held.message)
    for (const chunk of held.chunks) this.handler.onResponseData?.(this.#controller, chunk)
    this.handler.onResponseEnd?.(this.#controller, trailers)
  }

  #fail(error: unknown): void {
    if (this.#finished) return
    this.#finished = true
    this.handler.onResponseError?.(this.#controller, error instanceof Error ? error : new Error(String(error)))
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The body as bytes, read once: strings, bytes, Blobs and (async) streams; FormData cannot be replayed byte for byte here. */
async function bufferBody(body: Dispatcher.DispatchOptions['body'] | Blob): Promise<Uint8Array | null> {
  if (body === null || body === undefined) return null
  if (typeof body === 'string') return new TextEncoder().encode(body)
  if (body instanceof Uint8Array) return body
  if (typeof FormData !== 'undefined' && body instanceof FormData) {
    throw new TypeError(
      'A FormData body cannot be buffered for idempotent retries: serialize it (e.g. new Response(form).arrayBuffer()) first',
    )
  }
  if (typeof Blob !== 'undefined' && body instanceof Blob) return new Uint8Array(await body.arrayBuffer())
  if (Symbol.asyncIterator in body) {
    const chunks: Uint8Array[] = []
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      chunks.push(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk)
    }
    return concat(chunks)
  }
  throw new TypeError('This request body cannot be buffered for idempotent retries')
}

/** Bytes joined without Buffer, which browsers lack: this module must load there, though it only runs in Node. */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0))
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

/** undici takes headers as a record, a flat [name, value, …] array or pairs; one lower-cased record here. */
function normalizeHeaders(headers: Dispatcher.DispatchOptions['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const add = (name: string, value: unknown) => {
    if (value === undefined || value === null) return
    const lower = name.toLowerCase()
    const values = Array.isArray(value) ? value.map(String) : [String(value)]
    const known = out[lower]
    const all = known === undefined ? values : [...(Array.isArray(known) ? known : [known]), ...values]
    out[lower] = all.length === 1 ? (all[0] as string) : all
  }
  if (headers === null || headers === undefined) return out
  if (Array.isArray(headers)) {
    if (headers.every((entry) => typeof entry === 'string')) {
      for (let i = 0; i + 1 < headers.length; i += 2) add(String(headers[i]), String(headers[i + 1]))
    } else {
      for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) add(name, value)
    }
  } else if (Symbol.iterator in headers) {
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) add(name, value)
  } else {
    for (const [name, value] of Object.entries(headers)) add(name, value)
  }
  return out
}
