// What a function run by `run` or `runMany` receives (`RunContext`) and what the call returns
// (`RunResult`), and the class that builds the context of a protected execution.

export interface RunContext {
  key: string
  scope: string
  /** 1 for the first claim of this key, +1 for each takeover after a lapsed lease. */
  attempt: number
  /** True when this execution took over from a worker whose lease lapsed. */
  recovered: boolean
  /** Aborted (with a `LeaseLostError`) when the claim is lost while the function runs. */
  signal: AbortSignal
  /** A stable key for an outbound call (pass it to a payment API's own Idempotency-Key). */
  derivedKey(name: string): string
}

export interface RunResult<T> {
  status: 'executed' | 'replayed'
  value: T
  /**
   * True when the store failed and, because of `failOpen`, the function ran unprotected or its
   * outcome was not stored (a duplicate may run it again).
   */
  failedOpen?: true
}

/** What holds the claim while the function runs: its signal aborts when the claim is lost. */
export interface SignalSource {
  readonly signal: AbortSignal
}

/**
 * The `RunContext` of an execution. The same own, enumerable properties in the same order as an
 * object literal with a `signal` getter would have (so a spread or Object.keys sees no
 * difference), but V8 builds a literal with a getter on a slow path, while this class shares one
 * accessor between all contexts.
 */
export class ExecutionContext implements RunContext {
  declare key: string
  declare scope: string
  declare attempt: number
  declare recovered: boolean
  declare readonly signal: AbortSignal
  declare derivedKey: (name: string) => string
  readonly #claim: SignalSource

  static readonly #signal: PropertyDescriptor = {
    get(this: ExecutionContext): AbortSignal {
      return this.#claim.signal
    },
    enumerable: true,
    configurable: true,
  }

  constructor(
    base: { key: string; scope: string },
    attempt: number,
    recovered: boolean,
    claim: SignalSource,
    derivedKey: (name: string) => string,
  ) {
    this.#claim = claim
    this.key = base.key
    this.scope = base.scope
    this.attempt = attempt
    this.recovered = recovered
    Object.defineProperty(this, 'signal', ExecutionContext.#signal)
    this.derivedKey = derivedKey
  }
}

/** The context of a function run without protection (`failOpen`): no claim, so a signal that never aborts. */
export function unprotectedContext(
  base: { key: string; scope: string },
  derivedKey: (name: string) => string,
): RunContext {
  return {
    key: base.key,
    scope: base.scope,
    attempt: 1,
    recovered: false,
    signal: new AbortController().signal,
    derivedKey,
  }
}
