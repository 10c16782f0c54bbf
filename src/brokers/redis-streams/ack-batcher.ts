// Acknowledgements gathered into one XACK: the core settles each delivery on its own, often many in
// the same turn of the event loop (a batch whose records completed together). XACK takes any number
// of ids, so the ids asked for in one turn go in one XACK: one command instead of dozens, and still
// no ack before the core asked for it. Each caller learns the fate of the XACK carrying its id.

export class AckBatcher {
  readonly #send: (ids: readonly string[]) => Promise<unknown>
  readonly #max: number
  #queued: { id: string; resolve(): void; reject(error: unknown): void }[] = []
  #scheduled = false

  /** `send` runs one XACK for the ids; at most `max` ids go in one. */
  constructor(send: (ids: readonly string[]) => Promise<unknown>, max = 512) {
    this.#send = send
    this.#max = max
  }

  ack(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queued.push({ id, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        // After the current tick's other settlements have queued their ids too.
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    const queued = this.#queued
    this.#queued = []
    for (let i = 0; i < queued.length; i += this.#max) {
      const part = queued.slice(i, i + this.#max)
      this.#send(part.map((q) => q.id)).then(
        () => {
          for (const q of part) q.resolve()
        },
        (error: unknown) => {
          for (const q of part) q.reject(error)
        },
      )
    }
  }
}
