// Ownership of a store's driver object, one rule for every store: an instance you pass stays yours
// (the store never closes it); a factory `() => client` makes it the store's, created on first use
// and closed by close().

/** A driver object, or a factory for one that the store then owns. */
export type ClientOption<C> = C | (() => C | Promise<C>)

export class StoreClient<C> {
  /** True when the store made the client (through a factory) and so closes it. */
  readonly owned: boolean
  readonly #factory: (() => C | Promise<C>) | undefined
  readonly #failed: (error: unknown) => Error
  #client: C | undefined
  #opening: Promise<C> | undefined

  /**
   * `option` is the `client` option; `failed` turns a factory's failure into the error the
   * operation rejects with (the next operation calls the factory again).
   */
  constructor(option: ClientOption<C>, failed: (error: unknown) => Error, owned = typeof option === 'function') {
    this.owned = owned
    this.#failed = failed
    if (typeof option === 'function') this.#factory = option as () => C | Promise<C>
    else this.#client = option
  }

  /** The client once known: the one passed in, or the one the factory made. */
  get current(): C | undefined {
    return this.#client
  }

  /** The client, calling the factory once on first use (again after a failed call). */
  open(): Promise<C> {
    if (this.#client !== undefined) return Promise.resolve(this.#client)
    if (this.#opening === undefined) {
      const opening: Promise<C> = Promise.resolve()
        .then(this.#factory)
        .then(
          (client) => {
            this.#client = client as C
            return client as C
          },
          (error: unknown) => {
            if (this.#opening === opening) this.#opening = undefined
            throw this.#failed(error)
          },
        )
      this.#opening = opening
    }
    return this.#opening
  }

  /** The client, for a store whose factory must answer synchronously (its first use cannot wait). */
  openSync(): C {
    if (this.#client !== undefined) return this.#client
    let client: C | Promise<C>
    try {
      client = (this.#factory as () => C | Promise<C>)()
    } catch (error) {
      throw this.#failed(error)
    }
    if (client instanceof Promise)
      throw this.#failed(new TypeError('the client factory must return the client, not a promise'))
    this.#client = client
    return client
  }

  /** Close the client with `end` if the store owns it (made, or being made); never one passed in. */
  async close(end: (client: C) => unknown): Promise<void> {
    if (!this.owned) return
    const client = this.#client ?? (await this.#opening?.catch(() => undefined))
    if (client !== undefined) await end(client)
  }
}
