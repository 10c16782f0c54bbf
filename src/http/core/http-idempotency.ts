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

import { toMs } from '../../contract/duration.js'
import { Idempotency } from '../../core/idempotency.js'
import type { RunInput } from '../../core/options.js'
import {
  FingerprintMismatchError,
  InProgressError,
  InvalidKeyError,
  isIdempotencyError,
  StoreUnavailableError,
} from '../../errors.js'
import { ReleaseSignal, RequestTooLargeError } from './errors.js'
import { parseKeyHeader } from './key-header.js'
import { HTTP_DEFAULTS, type HttpIdempotencyOptions } from './options.js'
import { DEFAULT_PROBLEM_TYPE_BASE, Problem, problemResponse } from './problems.js'
import { authorizationPrincipal, requestFingerprint, scopeOf } from './request-identity.js'
import { type CapturedResponse, type CaptureOutcome, ResponseCapture } from './response-capture.js'
import {
  DEFAULT_REPLAY_HEADERS,
  decodeResponse,
  encodeResponse,
  type StoredResponse,
  storedSize,
} from './stored-response.js'
import type { Decision, HttpRequest, HttpResponse } from './types.js'

const PASS: Decision = { action: 'pass' }
/** Longest Retry-After a 409 suggests, in seconds. */
const MAX_RETRY_AFTER_S = 5

export class HttpIdempotency {
  readonly idempotency: Idempotency
  readonly header: string
  readonly maxRequestBytes: number
  readonly maxResponseBytes: number
  readonly abandonAfterMs: number
  readonly #methods: ReadonlySet<string>
  readonly #required: boolean
  readonly #principal: (request: HttpRequest) => string | undefined
  readonly #scope: string
  readonly #fingerprintHeaders: readonly string[]
  readonly #replayHeaders: ReadonlySet<string>
  readonly #problemBase: string
  readonly #policy: Omit<RunInput, 'key'>

  constructor(options: HttpIdempotencyOptions) {
    const maxResponseBytes = positive(options.maxResponseBytes ?? HTTP_DEFAULTS.maxResponseBytes, 'maxResponseBytes')
    if (options.idempotency !== undefined) this.idempotency = options.idempotency
    else if (options.store !== undefined) {
      this.idempotency = new Idempotency({ store: options.store, maxResultBytes: maxResponseBytes })
    } else throw new TypeError('HttpIdempotency needs a store or an idempotency: { store } or { idempotency }')
    this.header = (options.header ?? HTTP_DEFAULTS.header).toLowerCase()
    this.maxRequestBytes = positive(options.maxRequestBytes ?? HTTP_DEFAULTS.maxRequestBytes, 'maxRequestBytes')
    this.maxResponseBytes = maxResponseBytes
    this.abandonAfterMs = toMs(options.abandonAfter ?? HTTP_DEFAULTS.abandonAfter, 'abandonAfter')
    this.#methods = new Set((options.methods ?? HTTP_DEFAULTS.methods).map((m) => m.toUpperCase()))
    this.#required = options.required === true
    this.#principal = options.principal ?? authorizationPrincipal
    this.#scope = options.scope ?? HTTP_DEFAULTS.scope
    this.#fingerprintHeaders = (options.fingerprintHeaders ?? []).map((h) => h.toLowerCase())
    this.#replayHeaders = new Set((options.replayHeaders ?? DEFAULT_REPLAY_HEADERS).map((h) => h.toLowerCase()))
    this.#problemBase = options.problemTypeBase ?? DEFAULT_PROBLEM_TYPE_BASE
    const policy: Omit<RunInput, 'key'> = {}
    if (options.onInProgress !== undefined) policy.onInProgress = options.onInProgress
    if (options.waitTimeout !== undefined) policy.waitTimeout = options.waitTimeout
    if (options.ttl !== undefined) policy.ttl = options.ttl
    if (options.lease !== undefined) policy.lease = options.lease
    if (options.failOpen !== undefined) policy.failOpen = options.failOpen
    this.#policy = policy
  }

  /** True when `method` is subject to idempotency; adapters may skip all work for the others. */
  covers(method: string): boolean {
    return this.#methods.has(method)
  }

  /**
   * Decide what to do with `request`. Rejects only with an error that is not about idempotency
   * (a body that cannot be read, a bug): the adapter hands it to the framework's error handling.
   */
  async decide(request: HttpRequest): Promise<Decision> {
    if (!this.#methods.has(request.method)) return PASS
    const parsed = parseKeyHeader(request.headers[this.header])
    if (parsed === undefined) {
      if (!this.#required) return PASS
      return this.#respond(Problem.MISSING_KEY, `This operation requires an ${this.header} header.`)
    }
    if (!parsed.ok)
      return this.#respond(Problem.INVALID_KEY, `The ${this.header} header is malformed: ${parsed.reason}.`)

    let body = request.body
    if (body === undefined && request.readBody !== undefined) {
      try {
        body = await request.readBody()
      } catch (error) {
        if (!(error instanceof RequestTooLargeError)) throw error
        return this.#respond(Problem.REQUEST_TOO_LARGE, `The request body is over ${error.limit} bytes.`)
      }
    }
    const scope = scopeOf(this.#scope, this.#principal(request), request.method, request.route)
    const fingerprint = requestFingerprint(request, body, this.#fingerprintHeaders)
    return this.#run({ ...this.#policy, key: parsed.key, scope, fingerprint })
  }

  #run(input: RunInput): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      let decided = false
      const decide = (decision: Decision) => {
        decided = true
        resolve(decision)
      }
      // run() calls its function only after the store answered, by which time `finished` is set.
      const finished: Promise<unknown> = this.idempotency
        .run(input, () => {
          return new Promise<StoredResponse>((store, release) => {
            const settle = (outcome: CaptureOutcome): Promise<void> => {
              if (!outcome.ok) release(new ReleaseSignal(outcome.reason))
              else if (outcome.response.status >= 500) release(new ReleaseSignal(outcome.response.status))
              else store(this.#toStored(outcome.response))
              // Resolve once run() has stored or released the key, whatever happened to it.
              return finished.then(noop, noop)
            }
            decide({
              action: 'proceed',
              capture: new ResponseCapture(this.maxResponseBytes, this.abandonAfterMs, settle),
            })
          })
        })
        .then(
          (result) => {
            if (result.status === 'replayed') decide(this.#replay(result.value))
          },
          (error: unknown) => {
            // After "proceed", the response is the handler's: a release or a store failure is
            // reported by run()'s events, never to the client twice.
            if (decided) return
            const problem = this.#problemFor(error)
            if (problem !== undefined) decide(problem)
            else reject(error)
          },
        )
    })
  }

  /** Over the limit, the key is kept as "executed, response not stored": never executed twice. */
  #toStored({ status, headers, body, bytes }: CapturedResponse): StoredResponse {
    if (body === undefined) return { x: bytes }
    const stored = encodeResponse(status, headers, body, this.#replayHeaders)
    // 16 bytes for run()'s own envelope around the value.
    if (storedSize(stored, this.maxResponseBytes - 16) + 16 > this.maxResponseBytes) return { x: bytes }
    return stored
  }

  #replay(value: unknown): Decision {
    const response = decodeResponse(value as StoredResponse)
    if (response !== undefined) return { action: 'respond', response, replayed: true }
    return this.#notStored()
  }

  #notStored(): Decision {
    return this.#respond(
      Problem.RESPONSE_NOT_STORED,
      `The request with this key was executed, but its response was over the ${this.maxResponseBytes}-byte limit and was not kept. Use a new key to repeat the operation.`,
    )
  }

  #problemFor(error: unknown): Decision | undefined {
    if (error instanceof InProgressError) {
      // The holder's remaining lease bounds the wait, but a running request usually ends well
      // before its lease (which it renews): cap the hint so that clients come back soon.
      const seconds = String(Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(error.retryAfterMs / 1000))))
      return this.#respond(Problem.IN_PROGRESS, 'A request with this key is still being processed; retry later.', [
        ['retry-after', seconds],
      ])
    }
    if (error instanceof FingerprintMismatchError) {
      return this.#respond(
        Problem.KEY_REUSED,
        'This key was already used with a different method, target, body or headers. Use a new key for a new request.',
      )
    }
    if (error instanceof StoreUnavailableError) {
      return this.#respond(Problem.STORE_UNAVAILABLE, 'The idempotency store is unavailable; retry later.', [
        ['retry-after', '1'],
      ])
    }
    if (error instanceof InvalidKeyError) return this.#respond(Problem.INVALID_KEY, error.message)
    // A stored "too large" outcome, replayed: the core kept the error instead of the response.
    if (isIdempotencyError(error) && (error.code === 'RESULT_TOO_LARGE' || error.code === 'RESULT_NOT_SERIALIZABLE')) {
      return this.#notStored()
    }
    return undefined
  }

  #respond(kind: (typeof Problem)[keyof typeof Problem], detail: string, headers?: Array<[string, string]>): Decision {
    const response: HttpResponse = problemResponse(this.#problemBase, kind, detail, headers ? { headers } : {})
    return { action: 'respond', response, replayed: false }
  }
}

function noop(): void {}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${value}`)
  return value
}
