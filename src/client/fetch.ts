// `idempotentFetch()`: a fetch for one logical operation per call. A covered request (POST and
// PATCH by default) gets an Idempotency-Key, and every retry of it carries that same key with the
// same body bytes, so that the server executes it at most once however often the network fails
// between them. Browser-safe: nothing here imports node:, it uses only what fetch, AbortController
// and timers provide everywhere.

import { isKeyReusedProblem, keyReusedByServer } from './errors.js'
import { fingerprint, KeyMemory } from './keys.js'
import { type Operation, RetryPolicy, type RetryPolicyOptions } from './policy.js'

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface IdempotentFetchOptions extends RetryPolicyOptions {
  /** The fetch that sends each attempt; default globalThis.fetch (looked up per call, so that mocks and polyfills apply). */
  fetch?: FetchLike
}

export interface IdempotentRequestInit extends RequestInit {
  /** This operation's key, e.g. one kept with a form or a job so that it survives a page reload; same as the header. */
  idempotencyKey?: string
}

export type IdempotentFetch = (input: string | URL | Request, init?: IdempotentRequestInit) => Promise<Response>

/** How a response returned by an idempotent fetch came about. */
export interface IdempotencyInfo {
  key: string
  /** Attempts sent, this response's included. */
  attempts: number
  /** True when the server answered with a stored response (`Idempotent-Replayed: true`): an earlier attempt ran it. */
  replayed: boolean
}

const infos = new WeakMap<Response, IdempotencyInfo>()

/** The key, attempts and replay flag of a response `idempotentFetch` returned; undefined for any other response. */
export function idempotencyInfo(response: Response): IdempotencyInfo | undefined {
  return infos.get(response)
}

/**
 * A fetch-compatible function that makes covered requests idempotent and retries them with the
 * same key. The request body is read into memory once (a stream included) so that every attempt
 * sends the same bytes; that is the price of a safe retry, so stream large uploads another way.
 * Create one per application and share it: it remembers which body each key was used with.
 */
export function idempotentFetch(options: IdempotentFetchOptions = {}): IdempotentFetch {
  const policy = new RetryPolicy(options)
  const memory = new KeyMemory(policy.rememberKeys)
  const send: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init))

  return async (input, init) => {
    const { idempotencyKey, ...rest } = init ?? {}
    const request = new Request(input, rest)
    // The Request built above has taken over a Request input's body: send that one, not the input.
    if (!policy.covers(request.method)) return send(request)

    const signal = request.signal
    signal.throwIfAborted()
    const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer())
    const headers = new Headers(request.headers)
    const fromHeader = headers.get('idempotency-key')
    if (fromHeader !== null && idempotencyKey !== undefined && fromHeader !== idempotencyKey) {
      throw new TypeError('The Idempotency-Key header and the idempotencyKey option disagree; give one of them')
    }
    const key = fromHeader ?? idempotencyKey ?? policy.newKey({ method: request.method, url: request.url })
    headers.set('idempotency-key', key)
    // Before anything is sent: the same key with another request is refused here, not by a 422.
    memory.claim(key, await fingerprint(request.method, request.url, body))

    const attemptInit: RequestInit = {
      method: request.method,
      headers,
      body,
      redirect: request.redirect,
      credentials: request.credentials,
      integrity: request.integrity,
      keepalive: request.keepalive,
      mode: request.mode,
      referrerPolicy: request.referrerPolicy,
    }
    const op = policy.begin(key)
    for (;;) {
      signal.throwIfAborted()
      op.attempts++
      const response = await attempt(send, request.url, attemptInit, policy, op, signal)
      if (!(response instanceof Response)) {
        const delay = policy.afterError(op, response.error)
        if (delay === undefined) throw policy.giveUp(op, response.error)
        await sleep(delay, signal)
        continue
      }
      if (response.status === 422) await refuseReusedKey(key, response)
      const delay = policy.afterStatus(op, response.status, response.headers.get('retry-after'))
      if (delay === undefined) {
        infos.set(response, {
          key,
          attempts: op.attempts,
          replayed: response.headers.get('idempotent-replayed') === 'true',
        })
        return response
      }
      // Release the connection before waiting; nobody reads this answer.
      await response.body?.cancel().catch(() => undefined)
      await sleep(delay, signal)
    }
  }
}

/**
 * One attempt: the response, or the error it failed with when that error may be retried (a
 * network failure or this attempt's own timeout). The caller's abort is rethrown as is.
 */
async function attempt(
  send: FetchLike,
  url: string,
  init: RequestInit,
  policy: RetryPolicy,
  op: Operation,
  signal: AbortSignal,
): Promise<Response | { error: unknown }> {
  const controller = new AbortController()
  const forward = () => controller.abort(signal.reason)
  signal.addEventListener('abort', forward, { once: true })
  // A timer rather than AbortSignal.timeout(): the limit is for getting the headers, and the timer
  // can be cleared once they arrive, where AbortSignal.timeout would go on to cut the body short.
  const budget = policy.attemptBudget(op)
  const timer =
    budget === undefined
      ? undefined
      : setTimeout(
          () => controller.abort(new DOMException(`attempt ${op.attempts} took over ${budget} ms`, 'TimeoutError')),
          budget,
        )
  try {
    // The caller's signal stays linked to the returned response, so aborting it still stops the body.
    return await send(url, { ...init, signal: controller.signal })
  } catch (error) {
    signal.removeEventListener('abort', forward)
    if (signal.aborted) throw signal.reason
    return { error }
  } finally {
    clearTimeout(timer)
  }
}

/** A 422 `key-reused` problem is thrown; any other 422 (an application's validation error) is the caller's to read. */
async function refuseReusedKey(key: string, response: Response): Promise<void> {
  if (!response.headers.get('content-type')?.includes('problem+json')) return
  let problem: unknown
  try {
    problem = await response.clone().json()
  } catch {
    return
  }
  if (!isKeyReusedProblem(problem)) return
  await response.body?.cancel().catch(() => undefined)
  throw keyReusedByServer(key, problem)
}

/** Wait `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
