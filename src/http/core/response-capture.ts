// The response of a handler as it is written: its bytes are kept up to the size limit while they
// go to the client, and its end (or its failure) settles the key in the store.

export interface CapturedResponse {
  status: number
  /** Lower-case names, one pair per value. */
  headers: Array<[string, string]>
  /** The body, or undefined when it went over the limit. */
  body: Uint8Array | undefined
  /** Bytes the handler wrote. */
  bytes: number
}

export type CaptureOutcome = { ok: true; response: CapturedResponse } | { ok: false; reason: unknown }

export class ResponseCapture {
  readonly #limit: number
  readonly #abandonAfterMs: number
  readonly #settle: (outcome: CaptureOutcome) => Promise<void>
  #chunks: Uint8Array[] | undefined = []
  #bytes = 0
  #settled: Promise<void> | undefined
  #abandonTimer: NodeJS.Timeout | undefined

  /** `settle` stores or releases the key and resolves once that is done; it never rejects. */
  constructor(limit: number, abandonAfterMs: number, settle: (outcome: CaptureOutcome) => Promise<void>) {
    this.#limit = limit
    this.#abandonAfterMs = abandonAfterMs
    this.#settle = settle
  }

  /** True once the response went over the size limit: it will not be stored. */
  get overLimit(): boolean {
    return this.#bytes > this.#limit
  }

  /** True once `end` or `abort` was called: later calls are ignored. */
  get done(): boolean {
    return this.#settled !== undefined
  }

  /** A chunk of the body as it goes to the client; past the limit the bytes are counted, not kept. */
  write(chunk: Uint8Array | string): void {
    if (this.#settled !== undefined) return
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    this.#bytes += bytes.byteLength
    if (this.#chunks === undefined) return
    if (this.#bytes > this.#limit) this.#chunks = undefined
    else if (bytes.byteLength > 0) this.#chunks.push(bytes)
  }

  /** The handler ended its response: store it (2xx-4xx) or release the key (5xx). Resolves when the store is done. */
  end(status: number, headers: Array<[string, string]>): Promise<void> {
    if (this.#settled !== undefined) return this.#settled
    clearTimeout(this.#abandonTimer)
    const chunks = this.#chunks
    const body = chunks === undefined ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    this.#chunks = undefined
    this.#settled = this.#settle({
      ok: true,
      response: {
        status,
        headers,
        body: body ?? (chunks === undefined ? undefined : new Uint8Array(0)),
        bytes: this.#bytes,
      },
    })
    return this.#settled
  }

  /** The handler failed or its response broke off: release the key so that a retry executes. */
  abort(reason: unknown): Promise<void> {
    if (this.#settled !== undefined) return this.#settled
    clearTimeout(this.#abandonTimer)
    this.#chunks = undefined
    this.#settled = this.#settle({ ok: false, reason })
    return this.#settled
  }

  /**
   * The connection closed before the handler ended its response. The handler may have crashed, or
   * the client may have left while the handler still works: releasing now would let a retry run
   * alongside it. So the handler gets `abandonAfter` to end its response (which is then stored);
   * after that the key is released.
   */
  abandon(reason: unknown): void {
    if (this.#settled !== undefined || this.#abandonTimer !== undefined) return
    this.#abandonTimer = setTimeout(() => void this.abort(reason), this.#abandonAfterMs)
    this.#abandonTimer.unref()
  }
}
