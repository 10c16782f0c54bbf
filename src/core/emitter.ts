// A tiny typed emitter for lifecycle events (a run's, a consumer's, the HTTP layer's): a throwing
// listener never breaks what it observes.

export type Listener<E, K extends keyof E> = (event: E[K]) => void

export class Emitter<E> {
  readonly #listeners = new Map<keyof E, Set<(event: never) => void>>()

  on<K extends keyof E>(name: K, listener: Listener<E, K>): () => void {
    let set = this.#listeners.get(name)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(name, set)
    }
    set.add(listener as (event: never) => void)
    return () => {
      this.#listeners.get(name)?.delete(listener as (event: never) => void)
    }
  }

  off<K extends keyof E>(name: K, listener: Listener<E, K>): void {
    this.#listeners.get(name)?.delete(listener as (event: never) => void)
  }

  /** True when someone listens: lets the hot path skip building event objects. */
  has(name: keyof E): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0
  }

  emit<K extends keyof E>(name: K, event: E[K]): void {
    const set = this.#listeners.get(name)
    if (set === undefined) return
    for (const listener of set) {
      try {
        ;(listener as Listener<E, K>)(event)
      } catch {
        // listeners observe; they never decide an outcome
      }
    }
  }
}
