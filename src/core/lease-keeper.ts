// Renews a claim's lease while the function runs (every third of the lease), and aborts the
// function's signal when the claim is lost: another owner took over, or renewal kept failing
// until the lease had certainly run out.

import type { IdempotencyStore } from '../contract/types.js'
import { LeaseLostError, StoreUnavailableError } from '../errors.js'
import { Repeating } from './repeating.js'

export interface LeaseKeeperHooks<C> {
  onLost(context: C, error: LeaseLostError): void
  onStoreError(context: C, error: unknown): void
}

export class LeaseKeeper<C = unknown> extends Repeating {
  /** Made on first read of `signal`: most functions never look at it, and it is not free. */
  #controller: AbortController | undefined
  #lostWith: LeaseLostError | undefined
  readonly #store: IdempotencyStore
  readonly #id: string
  readonly #token: string
  readonly #leaseMs: number
  /** Shared by every keeper of one Idempotency; `context` tells them which claim. */
  readonly #hooks: LeaseKeeperHooks<C>
  readonly #context: C
  /** Local-clock instant by which the lease surely ends if no renewal succeeds. */
  #localDeadline: number
  #renewing = false
  #stopped = false

  constructor(
    store: IdempotencyStore,
    id: string,
    token: string,
    leaseMs: number,
    hooks: LeaseKeeperHooks<C>,
    context: C,
  ) {
    super()
    this.#store = store
    this.#id = id
    this.#token = token
    this.#leaseMs = leaseMs
    this.#hooks = hooks
    this.#context = context
    this.#localDeadline = Date.now() + leaseMs
    this.startRepeating(Math.max(1, Math.floor(leaseMs / 3)))
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#lostWith !== undefined) this.#controller.abort(this.#lostWith)
    }
    return this.#controller.signal
  }

  /**
   * Local-clock instant (`Date.now()`) until which the lease may still be held: the last renewal
   * that succeeded (or the claim) plus the lease, measured from when its request left.
   */
  get deadline(): number {
    return this.#localDeadline
  }

  stop(): void {
    this.#stopped = true
    this.stopRepeating()
  }

  protected override tick(): void {
    void this.#renew()
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
        this.#hooks.onStoreError(this.#context, error)
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
    this.#hooks.onLost(this.#context, error)
    this.#controller?.abort(error)
  }
}
