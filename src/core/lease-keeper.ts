// Renews a claim's lease while the function runs (every third of the lease), and aborts the
// function's signal when the claim is lost: another owner took over, or renewal kept failing
// until the lease had certainly run out.

import { LeaseLostError, StoreUnavailableError } from '../errors.js'
import type { IdempotencyStore } from '../store/types.js'

export interface LeaseKeeperHooks {
  onLost(error: LeaseLostError): void
  onStoreError(error: unknown): void
}

export class LeaseKeeper {
  /** Made on first read of `signal`: most functions never look at it, and it is not free. */
  #controller: AbortController | undefined
  #lostWith: LeaseLostError | undefined
  readonly #store: IdempotencyStore
  readonly #id: string
  readonly #token: string
  readonly #leaseMs: number
  readonly #hooks: LeaseKeeperHooks
  readonly #timer: NodeJS.Timeout
  /** Local-clock instant by which the lease surely ends if no renewal succeeds. */
  #localDeadline: number
  #renewing = false
  #stopped = false

  constructor(store: IdempotencyStore, id: string, token: string, leaseMs: number, hooks: LeaseKeeperHooks) {
    this.#store = store
    this.#id = id
    this.#token = token
    this.#leaseMs = leaseMs
    this.#hooks = hooks
    this.#localDeadline = Date.now() + leaseMs
    this.#timer = setInterval(() => void this.#renew(), Math.max(1, Math.floor(leaseMs / 3)))
    this.#timer.unref()
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#lostWith !== undefined) this.#controller.abort(this.#lostWith)
    }
    return this.#controller.signal
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#stopped) return
    this.#renewing = true
    const startedAt = Date.now()
    try {
      await this.#store.extend(this.#id, this.#token, this.#leaseMs)
      // Measured from when the request left: the store's deadline cannot be later than this.
      this.#localDeadline = startedAt + this.#leaseMs
    } catch (error) {
      if (this.#stopped) return
      if (error instanceof LeaseLostError) {
        this.#lose(error)
      } else {
        this.#hooks.onStoreError(error)
        if (Date.now() >= this.#localDeadline) {
          const lost = new LeaseLostError(
            `Lease on "${this.#id}" ran out while the store could not be reached to renew it`,
            { recordId: this.#id, cause: new StoreUnavailableError('Lease renewal failed', { cause: error }) },
          )
          this.#lose(lost)
        }
      }
    } finally {
      this.#renewing = false
    }
  }

  #lose(error: LeaseLostError): void {
    this.stop()
    this.#lostWith = error
    this.#hooks.onLost(error)
    this.#controller?.abort(error)
  }
}
