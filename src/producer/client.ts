// The driver object a producer publishes through, under the ownership rule every Idem factory
// keeps (the stores' StoreClient): an instance you pass stays yours (never closed here); a
// function that makes one hands it to the producer, which calls it on first publish and closes
// what it returned in close().

import { type ClientOption, StoreClient } from '../contract/store-client.js'
import { PublishNotConfirmedError } from './publish-error.js'

export type { ClientOption }

export class ProducerClient<C> {
  readonly #client: StoreClient<C>
  #closed = false

  /** Checks the option now: `what` names the factory, `needs` says what `client` must be. */
  constructor(source: ClientOption<C> | undefined, what: string, needs: string) {
    if (typeof source !== 'function' && (source === null || typeof source !== 'object')) {
      throw new TypeError(`${what} needs { client }: ${needs}, or a function returning one`)
    }
    // A factory's own error reaches the publish that called it; the next publish calls it again.
    this.#client = new StoreClient(source, (error) => (error instanceof Error ? error : new Error(String(error))))
  }

  /** True when the producer made the client (through the factory) and so closes it. */
  get owned(): boolean {
    return this.#client.owned
  }

  /** The client, made on first use when the option is a factory. */
  get(): Promise<C> {
    if (this.#closed) return Promise.reject(new PublishNotConfirmedError('the producer is closed'))
    return this.#client.open()
  }

  /** Stop handing the client out; close it with `close` only if the producer made it. */
  close(close: (client: C) => unknown): Promise<void> {
    this.#closed = true
    return this.#client.close(close)
  }
}
