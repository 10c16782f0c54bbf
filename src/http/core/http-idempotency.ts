// The framework-free HTTP core: from a normalised request, decide to pass it through, replay a
// stored response, refuse it with a problem, or let the handler run and capture its response.
//
// Built on `Idempotency.run` rather than on the store's begin/complete: run already claims, renews
// the lease while the handler runs, waits or rejects on a running key, fences completion, retries a
// failing store, fails open on request, serves the local cache and emits events. The handler is not
// a function run() can call, though: the framework calls it after our middleware returns. So run()'s
// function resolves the adapter's decision ("proceed") and then waits for the captured response;
// a 5xx, a thrown error or a broken response makes it throw a ReleaseSignal, which run() answers
// by releasing the key, exactly as for any failed function.

import type { KeyObject } from 'node:crypto'
import { warnDeprecated } from '../../contract/deprecation.js'
import { positiveInteger, toMs } from '../../contract/duration.js'
import { Emitter, type Listener } from '../../core/emitter.js'
import { plaintextBudget } from '../../core/encryption.js'
import { Idempotency } from '../../core/idempotency.js'
import { type CallOrigin, pickPolicy, type RunInput } from '../../core/options.js'
import { ErrorCode, IdempotencyError, InvalidKeyError, ResultTooLargeError } from '../../errors.js'
import { ReleaseSignal, RequestTooLargeError } from './errors.js'
import type { HttpEvents, HttpResponseEvent } from './events.js'
import { parseKeyHeader } from './key-header.js'
import { responseLimit } from './limits.js'
import { HTTP_DEFAULTS, type HttpIdempotencyOptions } from './options.js'
import { DEFAULT_PROBLEM_TYPE_BASE, isAnswered, problemResponse } from './problems.js'
import { authorizationPrincipal, principalKey, requestFingerprint, scopeOf } from './request-identity.js'
import { type CapturedResponse, type CaptureOutcome, ResponseCapture } from './response-capture.js'
import {
  DEFAULT_REPLAY_HEADERS,
  decodeResponse,
  encodeResponse,
  type StoredResponse,
  storedSize,
} from './stored-response.js'
import type { Decision, HeaderRecord, HttpRequest, HttpResponse } from './types.js'

/**
 * What every adapter takes: the options, or an `HttpIdempotency` shared between adapters (one
 * store, one set of events).
 */
export type HttpAdapterOptions = HttpIdempotencyOptions | HttpIdempotency

const PASS: Decision = { action: 'pass' }
/** One settled promise for every request that passes: nothing to allocate for them. */
const PASSED: Promise<Decision> = Promise.resolve(PASS)
/** Longest Retry-After a 409 suggests, in seconds. */
const MAX_RETRY_AFTER_S = 5

/**
 * The framework-free core of every HTTP adapter: decides for each request whether to pass it,
 * replay a stored response, answer a problem, or let the handler run with its response captured.
 *
 * @example
 * ```ts
 * import { MemoryStore } from 'idem'
 * import { HttpIdempotency, withIdempotency } from 'idem/http'
 * import { expressIdempotency } from 'idem/express'
 *
 * // One core shared by two adapters: one store, one set of events.
 * const http = new HttpIdempotency({ store: new MemoryStore(), required: true })
 * http.idem.on('store_error', (event) => console.error(event.error))
 * app.use(expressIdempotency(http))
 * const handler = withIdempotency(http, (req, res, body) => res.end('ok'))
 * ```
 */
export class HttpIdempotency {
  /** The `Idempotency` every request runs through: yours if you passed `idem`, else made over `store`. */
  readonly idem: Idempotency
  readonly header: string
  readonly maxRequestBytes: number
  readonly maxResponseBytes: number
  readonly abandonAfterMs: number
  readonly #methods: ReadonlySet<string>
  readonly #required: boolean
  readonly #principal: (request: HttpRequest) => string | undefined
  /** The HMAC key of `principalSecret`; undefined hashes principals with plain SHA-256. */
  readonly #principalKey: KeyObject | undefined
  /** The most bytes of response JSON that fit `maxResponseBytes` once stored (encrypted, when it is). */
  readonly #storedLimit: number
  readonly #scope: string
  readonly #fingerprintHeaders: readonly string[]
  readonly #replayHeaders: ReadonlySet<string>
  readonly #problemBase: string
  readonly #policy: Omit<RunInput, 'key'>
  readonly #events = new Emitter<HttpEvents>()

  /** `options` itself when it is an `HttpIdempotency` already, else one made from it: how every adapter starts. */
  static from(options: HttpAdapterOptions): HttpIdempotency {
    return options instanceof HttpIdempotency ? options : new HttpIdempotency(options)
  }

  constructor(options: HttpIdempotencyOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('HttpIdempotency needs an options object with a store or an idem: { store } or { idem }')
    }
    let idem = options.idem
    if (options.idempotency !== undefined) {
      warnDeprecated('The HTTP option `idempotency`', 'the option `idem`')
      idem ??= options.idempotency
    }
    if (idem !== undefined && options.encryption !== undefined) {
      throw new TypeError('HttpIdempotency takes encryption only with a store: give it to your idem instead')
    }
    if (idem !== undefined && options.store !== undefined && options.store !== idem.store) {
      throw new TypeError('HttpIdempotency takes a store or an idem, not both: the idem brings its own store')
    }
    const store = idem?.store ?? options.store
    if (store === undefined) {
      throw new TypeError('HttpIdempotency needs a store or an idem: { store } or { idem }')
    }
    this.maxResponseBytes = responseLimit(options.maxResponseBytes, store, idem)
    this.idem =
      idem ??
      (options.encryption === undefined
        ? new Idempotency({ store, maxResultBytes: this.maxResponseBytes })
        : new Idempotency({ store, maxResultBytes: this.maxResponseBytes, encryption: options.encryption }))
    const keyId = this.idem.encryptionKeyId
    this.#storedLimit =
      keyId === undefined ? this.maxResponseBytes : plaintextBudget(this.maxResponseBytes, keyId.length)
    this.#principalKey = options.principalSecret === undefined ? undefined : principalKey(options.principalSecret)
    this.header = (options.header ?? HTTP_DEFAULTS.header).toLowerCase()
    this.maxRequestBytes = positiveInteger(options.maxRequestBytes ?? HTTP_DEFAULTS.maxRequestBytes, 'maxRequestBytes')
    this.abandonAfterMs = toMs(options.abandonAfter ?? HTTP_DEFAULTS.abandonAfter, 'abandonAfter')
    this.#methods = new Set((options.methods ?? HTTP_DEFAULTS.methods).map((m) => m.toUpperCase()))
    this.#required = options.required === true
    this.#principal = options.principal ?? authorizationPrincipal
    this.#scope = options.scope ?? HTTP_DEFAULTS.scope
    this.#fingerprintHeaders = (options.fingerprintHeaders ?? []).map((h) => h.toLowerCase())
    this.#replayHeaders = new Set((options.replayHeaders ?? DEFAULT_REPLAY_HEADERS).map((h) => h.toLowerCase()))
    this.#problemBase = options.problemTypeBase ?? DEFAULT_PROBLEM_TYPE_BASE
    // `scope` here is the prefix of every request's scope, computed per request: not a policy.
    const { scope: _prefix, ...policy } = pickPolicy(options)
    this.#policy = policy
  }

  /** @deprecated Use `idem`. */
  get idempotency(): Idempotency {
    warnDeprecated('HttpIdempotency#idempotency', 'HttpIdempotency#idem')
    return this.idem
  }

  /**
   * Listen to how each request subject to idempotency ended (`response`: method, route, outcome,
   * status); returns a function that stops listening. The run's own events are on `idem`.
   */
  on<K extends keyof HttpEvents>(name: K, listener: Listener<HttpEvents, K>): () => void {
    return this.#events.on(name, listener)
  }

  off<K extends keyof HttpEvents>(name: K, listener: Listener<HttpEvents, K>): void {
    this.#events.off(name, listener)
  }

  /** True when `method` is subject to idempotency; adapters may skip all work for the others. */
  covers(method: string): boolean {
    return this.#methods.has(method)
  }

  /**
   * Decide what to do with `request`. Rejects only with an error that is not about idempotency
   * (a body that cannot be read, a bug): the adapter hands it to the framework's error handling.
   */
  decide(request: HttpRequest): Promise<Decision> {
    if (!this.#events.has('response')) return this.#decide(request, false)
    return this.#decide(request, true).then((decision) => {
      if (decision.action === 'respond') {
        const { response, replayed, code } = decision
        const outcome = replayed ? 'replayed' : 'rejected'
        this.#report(request, { outcome, status: response.status, code })
      } else if (decision.action === 'pass' && this.#methods.has(request.method)) {
        this.#report(request, { outcome: 'no_key', status: undefined })
      }
      return decision
    })
  }

  #report(request: HttpRequest, { outcome, status, code }: Omit<HttpResponseEvent, 'method' | 'route'>): void {
    const event: HttpResponseEvent = { method: request.method, route: request.route, outcome, status }
    if (code !== undefined) event.code = code
    this.#events.emit('response', event)
  }

  // Not async, and no closure bound to a name per request: an async function adds promises and
  // microtask turns to every request, and a named closure costs a defineProperty under tsx
  // (esbuild's keepNames). Whatever throws becomes a rejection, as it would in an async function.
  #decide(request: HttpRequest, reporting: boolean): Promise<Decision> {
    try {
      if (!this.#methods.has(request.method)) return PASSED
      const parsed = parseKeyHeader(request.headers[this.header])
      if (parsed === undefined) {
        if (!this.#required) return PASSED
        return Promise.resolve(
          this.#answer(
            new IdempotencyError(ErrorCode.MISSING_KEY, `This operation requires an ${this.header} header.`),
          ),
        )
      }
      if (!parsed.ok) {
        return Promise.resolve(
          this.#answer(new InvalidKeyError(`The ${this.header} header is malformed: ${parsed.reason}.`)),
        )
      }
      const reported = reporting ? request : undefined
      if (request.body !== undefined || request.readBody === undefined) {
        return this.#claim(request, parsed.key, request.body, reported)
      }
      let reading: Promise<Uint8Array | undefined>
      try {
        reading = request.readBody()
      } catch (error) {
        reading = Promise.reject(error)
      }
      return reading.then(
        (body) => this.#claim(request, parsed.key, body, reported),
        (error: unknown) => {
          if (!(error instanceof RequestTooLargeError)) throw error
          return this.#answer(error, `The request body is over ${error.limit} bytes.`)
        },
      )
    } catch (error) {
      return Promise.reject(error)
    }
  }

  #claim(request: HttpRequest, key: string, body: unknown, reported: HttpRequest | undefined): Promise<Decision> {
    const scope = scopeOf(this.#scope, this.#principal(request), request.method, request.route, this.#principalKey)
    const fingerprint = requestFingerprint(request, body, this.#fingerprintHeaders)
    const origin = new RequestOrigin(request.headers)
    return this.#run({ ...this.#policy, key, scope, fingerprint, origin }, reported)
  }

  /** `reported`: the request whose captured response is reported (when someone listens). */
  #run(input: RunInput, reported: HttpRequest | undefined): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      const exchange: Exchange = { resolve, reject, reported, decided: false, finished: undefined }
      // run() calls its function only after the store answered, by which time `finished` is set.
      exchange.finished = this.idem
        .run(input, () => new Promise<StoredResponse>((store, release) => this.#proceed(exchange, store, release)))
        .then(
          (result) => {
            if (result.status !== 'replayed') return
            // A stored value that is not a stored response (a corrupted record) throws here: it
            // must reach the caller, not be lost in this callback with the request left waiting.
            let replay: Decision
            try {
              replay = this.#replay(result.value)
            } catch (error) {
              reject(error)
              return
            }
            this.#decided(exchange, replay)
          },
          (error: unknown) => {
            // After "proceed", the response is the handler's: a release or a store failure is
            // reported by run()'s events, never to the client twice.
            if (exchange.decided) return
            const problem = this.#problemFor(error)
            if (problem !== undefined) this.#decided(exchange, problem)
            else reject(error)
          },
        )
    })
  }

  #decided(exchange: Exchange, decision: Decision): void {
    exchange.decided = true
    exchange.resolve(decision)
  }

  /** Inside run(): the key is claimed, so the handler runs and its captured response settles the key. */
  #proceed(
    exchange: Exchange,
    store: (stored: StoredResponse) => void,
    release: (signal: ReleaseSignal) => void,
  ): void {
    const capture = new ResponseCapture(this.maxResponseBytes, this.abandonAfterMs, (outcome) => {
      if (exchange.reported !== undefined) this.#reportCaptured(exchange.reported, outcome)
      if (!outcome.ok) release(new ReleaseSignal(outcome.reason))
      else if (outcome.response.status >= 500) release(new ReleaseSignal(outcome.response.status))
      else store(this.#toStored(outcome.response))
      // Resolve once run() has stored or released the key, whatever happened to it.
      return (exchange.finished as Promise<unknown>).then(noop, noop)
    })
    this.#decided(exchange, { action: 'proceed', capture })
  }

  #reportCaptured(request: HttpRequest, outcome: CaptureOutcome): void {
    if (!outcome.ok) this.#report(request, { outcome: 'released', status: undefined })
    else {
      const { status } = outcome.response
      this.#report(request, { outcome: status >= 500 ? 'released' : 'executed', status })
    }
  }

  /** Over the limit, the key is kept as "executed, response not stored": never executed twice. */
  #toStored({ status, headers, body, bytes }: CapturedResponse): StoredResponse {
    if (body === undefined) return { x: bytes }
    const stored = encodeResponse(status, headers, body, this.#replayHeaders)
    // 16 bytes for run()'s own envelope around the value; the limit is on the stored (sealed) form.
    if (storedSize(stored, this.#storedLimit - 16) + 16 > this.#storedLimit) return { x: bytes }
    return stored
  }

  #replay(value: unknown): Decision {
    const stored = value as StoredResponse
    const response = decodeResponse(stored)
    if (response !== undefined) return { action: 'respond', response, replayed: true }
    return this.#answer(new ResultTooLargeError('x' in stored ? stored.x : 0, this.maxResponseBytes))
  }

  /** The problem for an error of run(), or undefined for an error that is not about idempotency. */
  #problemFor(error: unknown): Decision | undefined {
    if (!isAnswered(error)) return undefined
    switch (error.code) {
      case ErrorCode.IN_PROGRESS: {
        // The holder's remaining lease bounds the wait, but a running request usually ends well
        // before its lease (which it renews): cap the hint so that clients come back soon.
        const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs ?? 1000
        const seconds = String(Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(retryAfterMs / 1000))))
        return this.#answer(error, 'A request with this key is still being processed; retry later.', [
          ['retry-after', seconds],
        ])
      }
      case ErrorCode.FINGERPRINT_MISMATCH:
        return this.#answer(
          error,
          'This key was already used with a different method, target, body or headers. Use a new key for a new request.',
        )
      case ErrorCode.STORE_UNAVAILABLE:
        return this.#answer(error, 'The idempotency store is unavailable; retry later.', [['retry-after', '1']])
      default:
        // A stored "response not stored" outcome is replayed as the core's error: answered below.
        return this.#answer(error)
    }
  }

  /** Answer `error` as a problem; `detail` defaults to what the error says. */
  #answer(error: IdempotencyError, detail?: string, headers?: Array<[string, string]>): Decision {
    const response: HttpResponse = problemResponse(this.#problemBase, error, detail ?? this.#detail(error), headers)
    return { action: 'respond', response, replayed: false, code: error.code }
  }

  #detail(error: IdempotencyError): string {
    if (error.code !== ErrorCode.RESULT_TOO_LARGE && error.code !== ErrorCode.RESULT_NOT_SERIALIZABLE) {
      return error.message
    }
    const limit = (error as { limit?: unknown }).limit
    const why =
      error.code === ErrorCode.RESULT_NOT_SERIALIZABLE
        ? 'could not be stored'
        : `was over the ${typeof limit === 'number' ? limit : this.maxResponseBytes}-byte limit`
    return `The request with this key was executed, but its response ${why} and was not kept. Use a new key to repeat the operation.`
  }
}

function noop(): void {}

/** One request's way through run(): the adapter's decision, then its response settling the key. */
interface Exchange {
  readonly resolve: (decision: Decision) => void
  readonly reject: (error: unknown) => void
  /** The request whose captured response is reported (when someone listens). */
  readonly reported: HttpRequest | undefined
  /** True once the adapter has its decision: later errors are run()'s events, not the client's. */
  decided: boolean
  /** run() and its answer handled: set before run() calls its function. */
  finished: Promise<unknown> | undefined
}

/** A request as the origin of its run: its headers, as strings, read only when a probe asks. */
class RequestOrigin implements CallOrigin {
  readonly #headers: HeaderRecord

  constructor(headers: HeaderRecord) {
    this.#headers = headers
  }

  headers(): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {}
    for (const [name, value] of Object.entries(this.#headers)) {
      if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value)
    }
    return out
  }
}
