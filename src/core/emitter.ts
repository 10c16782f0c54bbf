// A tiny typed emitter for lifecycle events (a run's, a consumer's, the HTTP layer's): a throwing
// listener never breaks what it observes. Listeners are kept in arrays replaced on every change
// (copy on write): emitting, once per run while metrics are on, is an indexed loop, and a
// listener removed while an event is being emitted still sees that event, as with a Set.

export type Listener<E, K extends keyof E> = (event: E[K]) => void

type AnyListener = (event: never) => void

export class Emitter<E> {
  readonly #listeners = new Map<keyof E, readonly AnyListener[]>()

  on<K extends keyof E>(name: K, listener: Listener<E, K>): () => void {
    const list = this.#listeners.get(name) ?? []
    // Adding the same listener twice keeps one, as a Set would.
    if (!list.includes(listener as AnyListener)) this.#listeners.set(name, [...list, listener as AnyListener])
    return () => this.off(name, listener)
  }

  off<K extends keyof E>(name: K, listener: Listener<E, K>): void {
    const list = this.#listeners.get(name)
    if (list === undefined) return
    const rest = list.filter((attached) => attached !== listener)
    if (rest.length === 0) this.#listeners.delete(name)
    else this.#listeners.set(name, rest)
  }

  /** True when someone listens: lets the hot path skip building event objects. */
  has(name: keyof E): boolean {
    return this.#listeners.has(name)
  }

  emit<K extends keyof E>(name: K, event: E[K]): void {
    const list = this.#listeners.get(name)
    if (list === undefined) return
    for (let i = 0; i < list.length; i++) {
      try {
        ;(list[i] as Listener<E, K>)(event)
      } catch {
        // listeners observe; they never decide an outcome
      }
    }
  }
}
